if header :contains "subject" "tickets" { discard; }
