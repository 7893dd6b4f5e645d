"""`subscribe demo`: the whole flow on embedded defaults, with nothing configured.

A throwaway SQLite file, the built-in dev mailbox on a free loopback port, three readers
who subscribe and confirm through real confirmation emails, one who never confirms, and a
sample post announced to the confirmed ones.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from subscribe.config import load_settings
from subscribe.content import PostSpec
from subscribe.db import store
from subscribe.devmail import message_parts, read_message, start_dev_mailbox
from subscribe.posts import campaign
from subscribe.readers import subscribers
from subscribe.readers.tokens import tokens_for
from subscribe.sending import runs, transactional
from subscribe.sending.sender import smtp_sender_factory

# (address, name, language: as the sign-up form would have chosen it; "" the site's)
READERS = [
    ("ada@example.org", "Ada Lovelace", ""),
    ("grace@example.com", "Grace Hopper", "de"),
    ("Linus@Example.NET", "", ""),
]
UNCONFIRMED = ("pending.reader@example.org", "Pat Pending", "")
SAMPLE_POST = PostSpec(
    key="https://blog.example/posts/hello-subscribers",
    title="Hello, subscribers!",
    url="https://blog.example/posts/hello-subscribers",
    summary="The first post announced by subscribe: one email per reader, one click to leave.",
)


def run_demo(say: Callable[[str], None]) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="subscribe-demo-"))
    mailbox = start_dev_mailbox(workdir / "mailbox")
    try:
        settings = load_settings(
            database_url=f"sqlite:///{workdir / 'demo.db'}",
            secret_key=secrets.token_urlsafe(32),
            base_url="http://127.0.0.1:8000",
            site_name="Demo Blog",
            site_url="https://blog.example",
            mail_from="Demo Blog <newsletter@blog.example>",
            smtp_host=mailbox.host,
            smtp_port=mailbox.port,
            smtp_security="none",
            smtp_username="",
            bounce_address="",
            templates_dir=None,
            send_rate=0,
            daily_limit=0,
        )
        say(f"demo folder: {workdir}")
        say(f"dev mailbox listening on {mailbox.host}:{mailbox.port}")
        engine = store.open_store(settings.database_url)
        tokens = tokens_for(settings)
        sender_factory = smtp_sender_factory(settings)
        for email, name, language in [*READERS, UNCONFIRMED]:
            with store.write_session(engine) as session:
                outcome = subscribers.request_subscription(
                    session,
                    settings,
                    email=email,
                    name=name,
                    consent=subscribers.Consent(source="demo"),
                    now=datetime.now(UTC),
                    language=language,
                )
                address = outcome.subscriber.email
            asyncio.run(
                transactional.deliver_due_messages(
                    engine, settings, sender_factory=sender_factory, tokens=tokens
                )
            )
            in_language = f" (in {language})" if language else ""
            say(f"subscribed {address}: confirmation email sent{in_language}")
            if (email, name, language) == UNCONFIRMED:
                continue
            # Follow the link in the email that just arrived, as the reader would. The
            # previous reader's welcome email went out in the same pass, in either order.
            token = _confirm_token(address, [p.read_bytes() for p in mailbox.messages()])
            with store.write_session(engine) as session:
                subscriber, _ = subscribers.confirm(
                    session, subject=tokens.read_confirm(token), now=datetime.now(UTC)
                )
                say(f"confirmed {subscriber.email}")
        with store.write_session(engine) as session:
            announced = campaign.announce(session, [SAMPLE_POST], now=datetime.now(UTC))
            say(f"announced {SAMPLE_POST.title!r}: {announced[0].enqueued} deliveries queued")
        report = runs.send_due(engine, settings, sender_factory=sender_factory, tokens=tokens)
        say(report.summary())
        _show_mailbox(say, mailbox.messages())
    finally:
        mailbox.stop()
    return workdir


def _confirm_token(address: str, messages: list[bytes]) -> str:
    """The link in the newest confirmation email to ``address``."""
    for raw in reversed(messages):
        message = _parse(raw)
        if address not in str(message["To"]):
            continue
        text, _ = message_parts(message)
        match = re.search(r"/confirm/(\S+)", text)
        if match:
            return match.group(1)
    raise AssertionError(f"no confirmation email reached {address}")


def _parse(raw: bytes):  # type: ignore[no-untyped-def]
    from email import message_from_bytes, policy

    return message_from_bytes(raw, policy=policy.default)


def _show_mailbox(say: Callable[[str], None], paths: list[Path]) -> None:
    say(f"\n{len(paths)} messages in the dev mailbox:")
    newest_post_mail = None
    for path in paths:
        message = read_message(path)
        say(f"  {path}  to {message['To']}: {message['Subject']}")
        if message["List-Unsubscribe"]:
            newest_post_mail = (path, message)
    if newest_post_mail is None:
        return
    path, message = newest_post_mail
    say(f"\nOne new-post email ({path.name}), headers:")
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Id"):
        say(f"  {name}: {message[name]}")
    say(f"  List-Unsubscribe: {message['List-Unsubscribe']}")
    say(f"  List-Unsubscribe-Post: {message['List-Unsubscribe-Post']}")
    text, _ = message_parts(message)
    say("\nIts text part:\n")
    say("\n".join("  " + line for line in text.splitlines()))
