require ["imap4flags", "fileinto"];
if header :contains "subject" "lunch" {
  fileinto :flags "\\Seen \\Answered" "Lunch";
  keep :flags "$Important";
}
addflag "$Seen-by-sieve";
