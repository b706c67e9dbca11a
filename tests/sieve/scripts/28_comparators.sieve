require "fileinto";
if header :is :comparator "i;octet" "subject" "lunch on friday?" { fileinto "Never"; }
if header :is "subject" "lunch on friday?" { fileinto "CaseFolded"; }
if address :comparator "i;octet" :all "cc" "BOB@EXAMPLE.COM" { fileinto "OctetCc"; }
