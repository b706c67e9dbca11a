require "fileinto";
if header :contains "Subject" ["lunch", "party"] {
  fileinto "Social";
} elsif header :is "subject" "[devel] Release plan" {
  fileinto "Lists.devel";
}
