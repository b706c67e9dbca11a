require ["encoded-character", "fileinto"];
if header :contains "subject" "${hex:4C 75}nch" { fileinto "${unicode:48}ex"; }
if header :contains "subject" "Gr${unicode:00fc}${unicode:00DF}e" { fileinto "Unicode"; }
if header :contains "subject" "${hex:zz}" { fileinto "Never"; }
