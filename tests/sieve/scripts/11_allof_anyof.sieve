require "fileinto";
if allof (address :domain "to" "example.com", not header :contains "subject" "lunch") {
  fileinto "NotLunch";
} 
if anyof (header :is "x-spam-flag" "YES", header :contains "subject" ["out of office", "undelivered"]) {
  fileinto "Auto";
}
