require ["reject", "fileinto"];
fileinto "Kept";
if header :contains "subject" "lunch" { reject "no lunch"; }
