require "fileinto";
if header :matches "subject" "FW: Tickets \\* cheap\\? *" { fileinto "Escaped"; }
if header :matches "subject" "*Frid?y?" { fileinto "QMark"; }
if header :matches "subject" "*a*a*a*a*a*a*a*a*a*a*a*a*a*b" { fileinto "Never"; }
if header :matches "message-id" "<*@*>" { fileinto "MsgId"; }
