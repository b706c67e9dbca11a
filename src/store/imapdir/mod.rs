//! STUB (being written): Maildir++ folders for IMAP.
