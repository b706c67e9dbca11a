require "reject";
if header :contains "subject" "cheap" {
  reject text:
Your message was refused.
.. Dot-stuffed line.
.
;
}
