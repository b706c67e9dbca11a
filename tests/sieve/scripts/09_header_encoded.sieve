require "fileinto";
# RFC 5228 2.7.2: header values are compared after RFC 2047 decoding.
if header :contains "subject" "Grüße aus München" { fileinto "Decoded"; }
if header :matches "from" "Jürgen*" { fileinto "Juergen"; }
if header :contains "cc" "François" { fileinto "Francois"; }
