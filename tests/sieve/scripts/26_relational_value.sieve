require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "5" {
  fileinto "Spam";
} elsif header :value "le" :comparator "i;ascii-numeric" "x-spam-score" "5" {
  fileinto "Ham";
}
if header :value "lt" "from" "H" { fileinto "FromBeforeH"; }
