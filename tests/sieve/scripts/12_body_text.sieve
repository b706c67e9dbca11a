require ["body", "fileinto"];
if body :text :contains "tracking number" { fileinto "Tracking"; }
if body :contains "Café" { fileinto "Cafe"; }
if body :contains "München" { fileinto "Munich"; }
if body :text :contains "preamblesecret" { fileinto "Preamble"; }
