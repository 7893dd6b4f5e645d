"""Rendering cost per message with readers in six languages, side by side with one.

A post is compiled once per language it is sent in (``EnvelopeFactory``), so a list whose
readers are spread over the six shipped languages should cost per message what a list in
one language costs: the compile is paid six times instead of once, and each message is
the same splice. This renders the same readers both ways, in-process, through the code
`notify` uses (``EnvelopeFactory.render``: tokens, Message-ID, return path, splice), and
prints the cost per message of each, best of a few repeats, and their ratio.

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
        one, one_compile = _per_message(Path(folder), _items(count, ("en",)), repeat)
        six, six_compile = _per_message(Path(folder), _items(count, SHIPPED_LANGUAGES), repeat)
    print(
        f"languages: {count} readers, one language: {one:.1f} us/message "
        f"(compile {one_compile:.0f} ms)"
    )
    print(
        f"languages: {count} readers, six languages: {six:.1f} us/message "
        f"(compiles {six_compile:.0f} ms)"
    )
    print(f"languages: six/one = {six / one:.2f}x per message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
