require ["body", "fileinto"];
if body :content "text/html" :contains "parcel" { fileinto "Html"; }
if body :content "application" :contains "invoicebinary" { fileinto "Invoice"; }
if body :content "text/plain" :contains "on its way" { fileinto "Never"; }
