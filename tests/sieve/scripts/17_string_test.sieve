require ["variables", "fileinto"];
set "a" "";
set "b" "x";
if string :is "${a}" "" { fileinto "EmptyA"; }
if string :contains ["${b}", "zzz"] "z" { fileinto "HasZ"; }
if string :matches "${b}" "?" { fileinto "OneChar"; }
