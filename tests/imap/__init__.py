"""Helpers and fixtures for the IMAP integration tests (tests/test_imap*.py)."""
