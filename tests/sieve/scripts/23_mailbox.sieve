require ["mailbox", "fileinto"];
fileinto :create "Created";
if mailboxexists "INBOX" { fileinto "InboxExists"; }
if mailboxexists "No-Such-Box" { fileinto "Never"; }
