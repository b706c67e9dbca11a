require "reject";
if size :over 1M { reject "too big"; }
if size :over 500 { redirect "big@example.net"; }
