"""Sending: the delivery ledger, the notifier and its SMTP lanes, pacing, the SMTP sender."""
