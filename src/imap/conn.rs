//! STUB (being written): IMAP connection glue.
