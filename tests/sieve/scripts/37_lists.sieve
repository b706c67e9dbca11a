require ["fileinto", "vacation"];
if anyof (exists "list-id", header :is "precedence" ["list", "bulk"]) {
  fileinto "Lists";
}
vacation :addresses "devel@lists.example.org" "Away.";
