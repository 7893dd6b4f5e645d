"""subscribe: email newsletter subscriptions for a blog."""

from .cli import main

__all__ = ["main"]
