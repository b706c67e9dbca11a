require ["fileinto", "variables"];
set "greeting" text: # a comment after text:
Hello
..world
.
;
if string :is "${greeting}" "Hello\r\n.world\r\n" { fileinto "Multiline"; }
/* a bracket
   comment */ if true { fileinto "AfterComment"; }
