redirect "a@example.net";
redirect "b@example.net";
redirect "c@example.net";
redirect "d@example.net";
if header :contains "subject" "party" { redirect "e@example.net"; }
