require ["fileinto"];
fileinto "Same";
fileinto "Same";
fileinto "INBOX";
keep;
redirect "x@example.net";
redirect "x@example.net";
