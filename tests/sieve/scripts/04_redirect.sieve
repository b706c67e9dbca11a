require "copy";
if address :domain :is "from" "example.org" {
  redirect :copy "archive@example.net";
}
if header :contains "from" "Newsletter" { redirect "<bob@example.net>"; }
