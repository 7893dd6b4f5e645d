"""subscribe: email newsletter subscriptions for a blog."""

from subscribe.cli import main

__all__ = ["main"]
