"""bench/feeds.py, the wide feed run, works: over our own corpus it counts every file and
finds no traceback (the same script runs over feedparser's ~2,000 test feeds by hand)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_feeds_counts_the_corpus(tmp_path: Path) -> None:
    corpus = ROOT / "tests" / "posts" / "feeds"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBSCRIBE_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "feeds.py"), str(corpus), "--list-errors"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = len(
        [p for p in corpus.iterdir() if p.suffix in {".xml", ".rdf", ".html", ".json", ".txt"}]
    )
    # Five files are no feed (empty, garbage, a plain page, JSON that is no JSON Feed,
    # entries without links).
    assert f"feeds: exit 0 {files - 5}, clean errors 5, tracebacks 0 (target 0)" in result.stdout
