require ["variables", "fileinto"];
# RFC 5229 3.2: ${N} hold what the wildcards matched.
if header :matches "List-Id" "*<*.lists.example.org>" {
  fileinto "List.${2}";
  stop;
}
if header :matches "Subject" "*: *" {
  fileinto "Prefix.${1}";
}
if address :matches "from" "*@*" { fileinto "Dom.${2}"; }
