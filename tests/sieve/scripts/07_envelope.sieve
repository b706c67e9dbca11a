require ["envelope", "fileinto"];
if envelope :domain :is "from" "example.org" { fileinto "From-example-org"; }
if envelope :localpart :matches "to" "b*" { fileinto "To-b"; }
