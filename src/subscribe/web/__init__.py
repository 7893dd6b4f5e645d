"""The web side: subscribe, confirm and unsubscribe pages, served by ``subscribe serve``."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
