require "fileinto";
if exists ["From", "Message-ID", "X-Spam-Score"] { fileinto "Scored"; }
if size :over 10K { fileinto "Big"; }
if size :under 1k { fileinto "Small"; }
