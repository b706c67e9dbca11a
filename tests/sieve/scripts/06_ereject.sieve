require "ereject";
if exists "x-spam-flag" { ereject "No spam, please."; }
