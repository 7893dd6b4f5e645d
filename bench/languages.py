"""Rendering cost per message with readers in six languages, side by side with one.

A post is compiled once per language it is sent in (``EnvelopeFactory``), so a list whose
readers are spread over the six shipped languages should cost per message what the same
readers cost in one language at a time: the compile is paid six times instead of once,
and each message is the same splice. This renders the same readers in each language
alone and all six mixed, in-process, through the code `notify` uses
(``EnvelopeFactory.render``: tokens, Message-ID, return path, splice), and prints the cost
per message of each, best of a few repeats, and the ratios.

    uv run python bench/languages.py [--readers 20000] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness import SITE, machine, machine_line, write_post

from subscribe.config import SHIPPED_LANGUAGES, load_settings
from subscribe.mail.envelopes import EnvelopeFactory, PostContent, RenderItem
from subscribe.posts.sources import from_markdown
from subscribe.readers.tokens import tokens_for


def _items(count: int, languages: tuple[str, ...]) -> list[RenderItem]:
    return [
        (
            i,
            1,
            i,
            f"reader.{i}@mail{i % 97}.example.org",
            f"reader.{i}@mail{i % 97}.example.org",
            f"Reader {i}" if i % 3 else "",
            languages[i % len(languages)],
        )
        for i in range(1, count + 1)
    ]


def _per_message(work: Path, items: list[RenderItem], repeat: int) -> tuple[float, float]:
    """(microseconds per message, milliseconds of first-use compiles) for a fresh factory."""
    values = {k.removeprefix("SUBSCRIBE_").lower(): v for k, v in SITE.items()}
    settings = load_settings(**values, database_url=f"sqlite:///{work / 'languages.db'}")
    spec = from_markdown(write_post(work / "post.md"))
    post = PostContent(
        1,
        spec.key,
        spec.title,
        spec.url,
        spec.summary,
        spec.body_html,
        spec.published_at,
        tuple(spec.categories),
        spec.image_url,
    )
    best = float("inf")
    compile_ms = 0.0
    for _ in range(repeat):
        factory = EnvelopeFactory(settings, tokens_for(settings))
        factory.add_post(post)
        started = time.perf_counter()
        seen: set[str] = set()
        for item in items:  # the first message of each language compiles its layout
            if item[6] not in seen:
                seen.add(item[6])
                factory.render([item])
        compile_ms = 1000 * (time.perf_counter() - started)
        started = time.perf_counter()
        factory.render(items)
        best = min(best, (time.perf_counter() - started) / len(items))
    return 1e6 * best, compile_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=20000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    count = 300 if args.smoke else args.readers
    repeat = 1 if args.smoke else 3
    print(machine_line(machine()), flush=True)
    with tempfile.TemporaryDirectory(prefix="subscribe-bench-languages-") as folder:
        work = Path(folder)
        alone = {
            lang: _per_message(work, _items(count, (lang,)), repeat)[0]
            for lang in SHIPPED_LANGUAGES
        }
        six, six_compile = _per_message(work, _items(count, SHIPPED_LANGUAGES), repeat)
    for lang, micros in alone.items():
        print(f"languages: {count} readers all in {lang}: {micros:.1f} us/message")
    mean = sum(alone.values()) / len(alone)
    print(
        f"languages: {count} readers in six languages: {six:.1f} us/message "
        f"(first messages, compiling each language: {six_compile:.0f} ms)"
    )
    # A message's own words cost what they cost (accented text is longer once encoded):
    # the mixed list is compared with the same readers in one language at a time.
    print(
        f"languages: six mixed / one at a time (mean) = {six / mean:.2f}x per message; "
        f"/ English only = {six / alone['en']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
