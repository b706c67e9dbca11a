require ["copy", "fileinto"];
fileinto :copy "Copies";
if header :contains "subject" "party" { redirect :copy "party@example.net"; }
