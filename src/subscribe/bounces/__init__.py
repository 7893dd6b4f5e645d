"""Bounces: parsing DSNs and plain-text bounces, reading mailboxes, applying them to readers."""
