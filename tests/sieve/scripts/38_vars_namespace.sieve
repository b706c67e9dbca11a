require ["variables", "fileinto", "imap4flags"];
set "f" "\\Seen";
addflag "myflags" "${f} $Label1";
if hasflag :is "myflags" "$label1" { fileinto :flags "${myflags}" "Labelled"; }
set :quotewildcard "q" "a*b?";
if string :is "${q}" "a\\*b\\?" { fileinto "Quoted"; }
if string :is "${unknown}" "" { fileinto "UnknownEmpty"; }
