"""Accounts beyond a username and a password: email addresses and their
verification, password change and reset by mail, the mail outbox and its sender,
trusted email domains (DESIGN.md §1, issue 11)."""
