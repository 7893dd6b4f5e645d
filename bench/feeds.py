"""Run `subscribe notify --feed FILE --dry-run` over every feed file found, and count.

Every file must end in one of two ways: exit 0, or a clean error (exit 1 with one line on
stderr). A traceback is a bug; each one is listed with its file and exception. The command
runs in-process (Typer's CliRunner, one shared throwaway SQLite file: a dry run stores
nothing), which is ~20x faster than a process per file and exercises the same code.

    uv run python bench/feeds.py DIR_OR_FILE... [--list-errors] [--per-file-seconds 10]

A wide corpus: the test suite inside feedparser's source distribution (~2,000 files),
downloaded outside the repository:

    cd /tmp && uv run --with pip pip download --no-binary :all: --no-deps feedparser
    tar xzf feedparser-*.tar.gz
    uv run python bench/feeds.py /tmp/feedparser-*/tests
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

FEED_SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".html", ".htm", ".json", ".txt", ".feed"}


def feed_files(locations: list[str]) -> list[Path]:
    found: list[Path] = []
    for location in locations:
        path = Path(location)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FEED_SUFFIXES
            )
        elif path.is_file():
            found.append(path)
        else:
            sys.exit(f"feeds.py: no such file or folder: {location}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locations", nargs="+", metavar="DIR_OR_FILE")
    parser.add_argument("--list-errors", action="store_true", help="print each clean error too")
    args = parser.parse_args()
    files = feed_files(args.locations)
    if not files:
        sys.exit("feeds.py: no feed files found")

    work = Path(tempfile.mkdtemp(prefix="subscribe-feeds-"))
    # Settings for the CLI, as a user would set them; nothing here reaches the network.
    os.environ.update(
        {
            "SUBSCRIBE_DATABASE_URL": f"sqlite:///{work / 'feeds.db'}",
            "SUBSCRIBE_SECRET_KEY": "bench-feeds-secret-key-0123456789",
            "SUBSCRIBE_MAIL_FROM": "Bench <bench@blog.example.org>",
            "SUBSCRIBE_SITE_NAME": "Bench",
            "SUBSCRIBE_FEED_URL": "",
        }
    )
    from typer.testing import CliRunner

    from subscribe.cli import app

    runner = CliRunner()
    counts: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    tracebacks: list[str] = []
    multiline: list[str] = []
    started = time.perf_counter()
    for path in files:
        result = runner.invoke(app, ["notify", "--feed", str(path), "--dry-run"])
        if result.exit_code == 0:
            counts["exit 0"] += 1
        elif isinstance(result.exception, SystemExit) and result.exit_code == 1:
            lines = result.stderr.strip().splitlines()
            counts["clean error"] += 1
            if len(lines) != 1:
                multiline.append(f"{path}: {result.stderr.strip()!r}")
            message = lines[-1] if lines else "(no message)"
            errors[
                message.replace(str(path.resolve()), "FILE").replace(str(path), "FILE")[:90]
            ] += 1
            if args.list_errors:
                print(f"  error {path}: {message}")
        else:
            counts["traceback"] += 1
            exc = result.exception
            assert exc is not None
            where = traceback.extract_tb(exc.__traceback__)[-1]
            tracebacks.append(
                f"{path}: {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
            )
    elapsed = time.perf_counter() - started

    print(f"feeds: {len(files)} files in {elapsed:.1f} s ({len(files) / elapsed:.0f}/s)")
    print(
        f"feeds: exit 0 {counts['exit 0']}, clean errors {counts['clean error']}, "
        f"tracebacks {counts['traceback']} (target 0)"
    )
    for message, count in errors.most_common(8):
        print(f"  {count:5d} x {message}")
    for line in multiline:
        print(f"  error not on one line: {line}")
    for line in tracebacks:
        print(f"  traceback: {line}")
    return 1 if tracebacks or multiline else 0


if __name__ == "__main__":
    sys.exit(main())
