require "fileinto";
if address :domain "from" "example.org" { fileinto "Org"; stop; }
fileinto "Rest";
