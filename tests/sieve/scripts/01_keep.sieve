# RFC 5228 4.3: an explicit keep.
keep;
