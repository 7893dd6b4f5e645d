"""JSON Feed (https://jsonfeed.org, versions 1.0 and 1.1) in the shape feedparser gives an
RSS or Atom feed, so that ``feeds`` reads all three the same way.

micro.blog, many Hugo and Eleventy themes and some newsletters offer one beside (or
instead of) RSS. 1.1 renamed ``author`` to ``authors`` and added ``language``; neither
matters here. Real files also give numeric ids (1.0 allowed no such thing, they do it
anyway), ``url`` relative to ``home_page_url``, and only ``external_url`` on a link post.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from feedparser.datetimes import _parse_date

_VERSION_PREFIX = "https://jsonfeed.org/version/"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        return str(value)  # a numeric id
    return value.strip() if isinstance(value, str) else ""


def parse(content: bytes) -> dict[str, Any] | None:
    """The feed as feedparser would describe it, or None when ``content`` is no JSON Feed."""
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, Mapping):
        return None
    version = _text(document.get("version"))
    items = document.get("items")
    if not version.startswith(_VERSION_PREFIX) or not isinstance(items, list):
        return None
    feed = {"title": _text(document.get("title")), "link": _text(document.get("home_page_url"))}
    entries = [_entry(item) for item in items if isinstance(item, Mapping)]
    return {"feed": feed, "entries": entries, "version": "json" + version[len(_VERSION_PREFIX) :]}


def _entry(item: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": _text(item.get("id")),
        "link": _text(item.get("url")) or _text(item.get("external_url")),
        "title": _text(item.get("title")),
        "title_detail": {"type": "text/plain"},
    }
    html, text = _text(item.get("content_html")), _text(item.get("content_text"))
    summary = _text(item.get("summary"))
    if summary:
        entry["summary"], entry["summary_detail"] = summary, {"type": "text/plain"}
    entry["content"] = [
        {"value": value, "type": kind}
        for value, kind in ((html, "text/html"), (text, "text/plain"))
        if value
    ]
    for name, field in (("published", "date_published"), ("updated", "date_modified")):
        raw = _text(item.get(field))
        if raw:
            entry[name] = raw
            entry[name + "_parsed"] = _parse_date(raw)
    tags = item.get("tags")
    if isinstance(tags, list):
        entry["tags"] = [{"term": _text(tag)} for tag in tags if _text(tag)]
    image = _text(item.get("image")) or _text(item.get("banner_image"))
    if image:
        entry["image"] = {"href": image}
    return entry
