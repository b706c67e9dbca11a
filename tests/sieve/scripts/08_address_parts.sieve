require "fileinto";
if address :localpart "to" "carol" { fileinto "Carol"; }
if address :all :is ["to", "cc"] "francois@example.fr" { fileinto "Francois"; }
if address :domain :contains "from" "shop" { fileinto "Shop"; }
if address :is "from" "Alice Example" { fileinto "Never"; }
