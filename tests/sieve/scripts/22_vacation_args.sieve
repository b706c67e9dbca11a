require ["vacation", "fileinto"];
vacation :days 3 :subject "Away" :from "bob@example.com"
  :addresses ["bob@example.com", "robert@example.com"] :handle "away-2026"
  text:
I am away.
..and back soon.
.
;
if header :contains "subject" "release" { fileinto "Lists"; }
