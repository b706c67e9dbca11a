require ["vacation", "imap4flags"];
addflag "\\Seen";
vacation :days 1 :addresses ["bob@example.com"] "On leave.";
