"""Per-call costs of the pieces of the sending and import paths, in microseconds.

In-process timings of subscribe's own functions (not the CLI), to put numbers on the
hotspots the profiles show: what one message costs to prepare (token, Message-ID, return
path, render), to hand to the socket (dot-stuffing), to record (a group commit), and what
one CSV row costs to validate on import. Each figure is the best of a few repeats.

    uv run python bench/micro.py [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from harness import SITE, machine, machine_line, write_post

from subscribe.config import load_settings
from subscribe.db import bulk, store
from subscribe.db.models import DeliveryStatus, utcnow
from subscribe.mail.envelopes import post_builder
from subscribe.mail.render import Recipient, message_id, smtp_data
from subscribe.posts.sources import from_markdown
from subscribe.readers.addresses import normalize, to_ascii
from subscribe.readers.subscribers import clean_name, suppression_hashes
from subscribe.readers.tokens import tokens_for
from subscribe.sending import ledger
from subscribe.sending.leases import Owner
from subscribe.sending.ledger import Outcome


def best_of(fn: Callable[[], object], number: int, repeat: int = 3) -> float:
    """Microseconds per call, best of ``repeat`` runs of ``number`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - started) / number)
    return 1e6 * min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    n = 200 if args.smoke else 5000

    print(machine_line(machine()), flush=True)
    with tempfile.TemporaryDirectory(prefix="subscribe-bench-micro-") as folder:
        rows = measure_all(Path(folder), n, smoke=args.smoke)
    for label, micros in rows:
        print(f"micro: {label}: {micros:.1f} us")
    return 0


def measure_all(work: Path, n: int, *, smoke: bool) -> list[tuple[str, float]]:
    values = {k.removeprefix("SUBSCRIBE_").lower(): v for k, v in SITE.items()}
    settings = load_settings(**values, database_url=f"sqlite:///{work / 'micro.db'}")
    tokens = tokens_for(settings)
    spec = from_markdown(write_post(work / "post.md"))
    builder = post_builder(settings, spec)
    recipient = Recipient(
        email="reader.12345@mail42.example.org",
        name="Reader 12345",
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{tokens.unsubscribe_token(1, 'x')}",
        message_id=message_id(settings.mail_domain, post_key=spec.url, subscriber_id=12345),
    )
    message = builder.build(recipient)
    domain = settings.mail_domain

    rows: list[tuple[str, float]] = []

    def measure(label: str, fn: Callable[[], object], number: int = n) -> None:
        rows.append((label, best_of(fn, number)))

    # -- per message, on the event loop -----------------------------------------------------
    measure("tokens.unsubscribe_token", lambda: tokens.unsubscribe_token(12345, "k"))
    measure("settings.mail_from_address (parseaddr)", lambda: settings.mail_from_address)
    measure("settings.mail_domain (parseaddr)", lambda: settings.mail_domain)
    measure(
        "render.message_id (domain parsed once)",
        lambda: message_id(domain, post_key=spec.url, subscriber_id=12345),
    )
    measure("addresses.to_ascii", lambda: to_ascii("reader.12345@mail42.example.org"))
    measure("MessageBuilder.build (spliced, ~10 KB)", lambda: builder.build(recipient))
    measure("render.smtp_data (dot-stuffing)", lambda: smtp_data(message))

    # -- the ledger (SQLite) ----------------------------------------------------------------
    engine = store.open_store(settings.database_url)
    count = 4000 if not smoke else 400
    with engine.begin() as connection:
        bulk.insert_subscribers(
            connection,
            rows=[
                {
                    "email": f"r{i}@example.org",
                    "email_key": f"r{i}@example.org",
                    "name": "",
                    "status": "confirmed",
                    "created_at": utcnow(),
                    "confirmed_at": utcnow(),
                    "consent_source": "",
                    "consent_ip": "",
                    "consent_user_agent": "",
                    "consent_at": utcnow(),
                    "confirmation_day": "",
                    "confirmations_that_day": 0,
                    "bounce_count": 0,
                }
                for i in range(count)
            ],
        )
        connection.exec_driver_sql(
            "INSERT INTO post (key, title, url, summary, body_html, created_at) "
            "VALUES ('p', 't', 'u', '', '', '2026-01-01 00:00:00')"
        )
        ledger.enqueue(connection, post_id=1, now=utcnow() - timedelta(seconds=1))
    owner = Owner.this_process()
    claimed = []
    started = time.perf_counter()
    batches = 0
    while True:
        got = ledger.claim(engine, owner=owner, now=utcnow(), limit=500, lease_seconds=60)
        if not got:
            break
        claimed += got
        batches += 1
    rows.append(
        (
            "ledger.claim, per delivery (batches of 500)",
            1e6 * (time.perf_counter() - started) / len(claimed),
        )
    )
    outcomes = [
        Outcome(c.delivery_id, c.subscriber_id, DeliveryStatus.SENT, message_id="<x@y>")
        for c in claimed
    ]
    # The group commit of a run (OutcomeWriter, when this version has it) and ledger.record.
    writer_class = getattr(ledger, "OutcomeWriter", None)
    writer = writer_class(engine) if writer_class is not None else None
    recorders: list[tuple[str, Callable[[list[Outcome]], None]]] = [
        ("ledger.record", lambda chunk: ledger.record(engine, chunk, now=utcnow()))
    ]
    if writer is not None:
        recorders.append(("OutcomeWriter.record", lambda chunk: writer.record(chunk, now=utcnow())))
    for name, recorder in recorders:
        for size in (1, 8):
            end = min(len(outcomes), (10 if smoke else 100) * size)
            chunks = [outcomes[i : i + size] for i in range(0, end, size)]
            started = time.perf_counter()
            for chunk in chunks:
                recorder(chunk)
            per_commit = 1e6 * (time.perf_counter() - started) / len(chunks)
            rows.append((f"{name}, one commit of {size} sent outcomes", per_commit))
            outcomes = outcomes[len(chunks) * size :]
    if writer is not None:
        writer.close()
    engine.dispose()

    # -- per CSV row on import --------------------------------------------------------------
    measure(
        "addresses.normalize (email-validator)",
        lambda: normalize("Reader.12345@Mail42.example.org"),
    )
    measure("subscribers.clean_name", lambda: clean_name("Reader 12345"))
    measure(
        "subscribers.suppression_hashes (HMAC)",
        lambda: suppression_hashes(settings, "r@example.org"),
    )

    print(f"message: {len(message)} bytes")
    return rows


if __name__ == "__main__":
    sys.exit(main())
