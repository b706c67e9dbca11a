require ["subaddress", "fileinto", "variables"];
if address :detail :matches "to" "*" { fileinto "Detail.${1}"; }
if address :user "to" "bob" { fileinto "UserBob"; }
if address :detail "from" "news" { fileinto "FromNews"; }
