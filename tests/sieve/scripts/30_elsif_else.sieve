require "fileinto";
if header :contains "subject" "lunch" { fileinto "A"; }
elsif header :contains "subject" "party" { fileinto "B"; }
elsif exists "list-id" { fileinto "C"; }
else { fileinto "D"; }
