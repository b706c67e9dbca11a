require ["body", "fileinto"];
if body :raw :contains "PGh0bWw" { fileinto "RawBase64"; }
if body :raw :contains "Gr=C3=BC" { fileinto "RawQP"; }
