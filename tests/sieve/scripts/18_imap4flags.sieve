require ["imap4flags", "fileinto"];
setflag "\\Flagged";
addflag ["$Work", "\\Seen"];
removeflag "\\Flagged";
if hasflag :contains "work" { fileinto "Work"; }
if hasflag "\\Flagged" { fileinto "Never"; }
