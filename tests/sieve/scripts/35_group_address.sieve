require "fileinto";
if address :is :all "to" "erin@example.org" { fileinto "GroupMember"; }
if address :is :all "to" "frank@example.net" { fileinto "AfterGroup"; }
if address :contains "to" "friends" { fileinto "Never"; }
if address :is "cc" "undisclosed-recipients" { fileinto "Never2"; }
