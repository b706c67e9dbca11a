require "fileinto";
if header :is "subject" "x" {
  if foo "x" { keep; }
}
