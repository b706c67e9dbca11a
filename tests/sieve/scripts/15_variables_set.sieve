require ["variables", "fileinto"];
set "folder" "lists";
set :upper "shout" "quiet";
set :lowerfirst "lf" "ABC";
set :upperfirst :lower "uf" "hELLO";
set :length "len" "münchen";
if string :is "${shout}" "QUIET" { fileinto "${folder}.upper"; }
if string :is "${lf}" "aBC" { fileinto "lowerfirst"; }
if string :is "${uf}" "Hello" { fileinto "upperfirst"; }
if string :is "${len}" "7" { fileinto "length7"; }
