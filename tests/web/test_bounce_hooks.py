"""POST /hooks/bounces/{ses,mailgun,postmark,sendgrid}: verified as each provider signs, judged
by the same reasons as bounce mail, each event once; forged, stale and replayed calls refused
and changing nothing. Keys are made here; SNS's certificate comes from a local server."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sqlalchemy as sa
from conftest import make_settings
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from hookpayloads import (
    TOPIC,
    FakeSns,
    ecdsa_key,
    mailgun_call,
    mailgun_failed,
    postmark_bounce,
    rsa_certificate,
    sendgrid_event,
    sendgrid_headers,
    ses_bounce,
    ses_complaint,
    sns_message,
)
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from webserver import asgi_client, open_app, running_server

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import subscriber_table, utcnow, webhook_event_table
from subscribe.readers import subscribers
from subscribe.web import create_app

pytestmark = pytest.mark.anyio

MAILGUN_KEY = "key-0123456789abcdef0123456789abcdef"
POSTMARK = ("postmark", "a-long-random-password")
READERS = ("gone@example.com", "full@example.com", "fine@example.com", "left@example.com")
S = subscriber_table.c


@pytest.fixture(scope="module")
def sns_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    return rsa_certificate()


@pytest.fixture(scope="module")
def sendgrid_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    return ecdsa_key()


@pytest.fixture
def fake_sns(sns_key: tuple[rsa.RSAPrivateKey, bytes]) -> Iterator[FakeSns]:
    server = FakeSns(sns_key[1])
    yield server
    server.stop()


@pytest.fixture
def hook_settings(
    database_url: str, smtp_server: SMTPServer, sendgrid_key: tuple[object, str]
) -> Settings:
    return make_settings(
        database_url,
        smtp_server,
        ses_topic_arns=TOPIC,
        mailgun_signing_key=MAILGUN_KEY,
        postmark_username=POSTMARK[0],
        postmark_password=POSTMARK[1],
        sendgrid_public_key=sendgrid_key[1],
    )


@pytest.fixture
def hook_app(hook_settings: Settings, fake_sns: FakeSns) -> Iterator[FastAPI]:
    with open_app(hook_settings, sns_fetch=fake_sns.fetch) as app:
        with Session(app.state.web.engine) as session:
            for address in READERS:
                subscribers.add(session, hook_settings, email=address, confirmed=True, now=utcnow())
        yield app


@pytest.fixture
async def hooks(hook_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(hook_app) as client:
        yield client


def engine_of(app: FastAPI) -> Engine:
    engine: Engine = app.state.web.engine
    return engine


def readers(app: FastAPI) -> dict[str, tuple[str, int, str, bool]]:
    """address -> (status, bounce_count, last_bounce_reason, complained)."""
    query = sa.select(
        S.email, S.status, S.bounce_count, S.last_bounce_reason, S.complained_at.is_not(None)
    )
    with engine_of(app).connect() as connection:
        return {row[0]: tuple(row[1:]) for row in connection.execute(query)}  # type: ignore[misc]


def stored_events(app: FastAPI) -> int:
    with engine_of(app).connect() as connection:
        query = sa.select(sa.func.count()).select_from(webhook_event_table)
        return int(connection.execute(query).scalar_one())


# -- Amazon SES through SNS -----------------------------------------------------------------


async def post_sns(client: httpx.AsyncClient, message: dict[str, str]) -> httpx.Response:
    # SNS posts JSON as text/plain, with its own headers.
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"}
    return await client.post("/hooks/bounces/ses", content=json.dumps(message), headers=headers)


@pytest.mark.parametrize("version", ["1", "2"])
async def test_ses_bounces_and_complaints_judged_by_reason_and_applied_once(
    hooks: httpx.AsyncClient,
    hook_app: FastAPI,
    sns_key: tuple[rsa.RSAPrivateKey, bytes],
    fake_sns: FakeSns,
    version: str,
) -> None:
    key = sns_key[0]
    gone = sns_message(
        key,
        version=version,
        message=ses_bounce(
            "Gone@example.com",
            bounce_type="Permanent",
            subtype="General",
            status="5.1.1",
            diagnostic="smtp; 550 5.1.1 user unknown",
        ),
    )
    full = sns_message(
        key,
        version=version,
        message=ses_bounce(
            "full@example.com",
            bounce_type="Transient",
            subtype="MailboxFull",
            event_publishing=True,
        ),
    )
    # Content rejected is about the message: a 5.x.x that must not touch the reader.
    content = sns_message(
        key,
        version=version,
        message=ses_bounce(
            "fine@example.com",
            bounce_type="Permanent",
            subtype="ContentRejected",
            status="5.7.1",
            diagnostic="smtp; 550 5.7.1 Message rejected: recipient does not exist or spam",
        ),
    )
    complaint = sns_message(key, version=version, message=ses_complaint("left@example.com"))
    for message in (gone, full, content, complaint):
        response = await post_sns(hooks, message)
        assert response.status_code == 200, response.text
        assert response.json()["applied"] == 1, response.json()
    expected = {
        "gone@example.com": ("bounced", 0, "user_unknown", False),
        "full@example.com": ("confirmed", 1, "mailbox_full", False),
        "fine@example.com": ("confirmed", 0, "spam", False),
        "left@example.com": ("unsubscribed", 0, "", True),
    }
    assert readers(hook_app) == expected
    # SNS delivers at least once: the same notifications again change nothing.
    for message in (gone, full, content, complaint):
        response = await post_sns(hooks, message)
        assert (response.status_code, response.json()["repeated"]) == (200, 1)
    assert readers(hook_app) == expected
    # The certificate was fetched once, and cached.
    assert [p for p in fake_sns.requests if p.endswith(".pem")] == [
        "/SimpleNotificationService-0123456789abcdef.pem"
    ]


async def test_ses_forgeries_are_refused_and_change_nothing(
    hooks: httpx.AsyncClient,
    hook_app: FastAPI,
    sns_key: tuple[rsa.RSAPrivateKey, bytes],
    fake_sns: FakeSns,
) -> None:
    key = sns_key[0]
    bounce = ses_bounce("gone@example.com", bounce_type="Permanent", subtype="NoEmail")
    tampered = sns_message(key, message=bounce)
    tampered["Message"] = tampered["Message"].replace("gone@", "fine@")
    other_key = rsa_certificate()[0]
    forgeries = [
        tampered,
        sns_message(other_key, message=bounce),  # signed, but not with SNS's key
        # Signed with the attacker's own certificate, served from the attacker's host.
        sns_message(key, message=bounce, cert_url="https://evil.example/cert.pem"),
        sns_message(key, message=bounce, cert_url="http://sns.us-east-1.amazonaws.com/c.pem"),
        sns_message(key, message=bounce, cert_url="https://sns.us-east-1.amazonaws.com.evil/c.pem"),
        sns_message(key, message=bounce, topic="arn:aws:sns:us-east-1:999999999999:other"),
        {**sns_message(key, message=bounce), "SignatureVersion": "3"},
    ]
    for forged in forgeries:
        response = await post_sns(hooks, forged)
        assert response.status_code == 401, (forged, response.text)
    assert all(status == "confirmed" for status, *_ in readers(hook_app).values())
    assert stored_events(hook_app) == 0
    # Only the genuine SNS host's certificate URL was ever fetched.
    assert all("evil" not in path for path in fake_sns.requests)
    for body in (b"{not json", b"[]", json.dumps({"Type": "Other"}).encode()):
        response = await hooks.post("/hooks/bounces/ses", content=body)
        assert response.status_code == 400


async def test_ses_certificate_that_cannot_be_fetched_asks_sns_to_retry(
    hooks: httpx.AsyncClient,
    hook_app: FastAPI,
    sns_key: tuple[rsa.RSAPrivateKey, bytes],
    fake_sns: FakeSns,
) -> None:
    bounce = ses_bounce("gone@example.com", bounce_type="Permanent", subtype="NoEmail")
    message = sns_message(sns_key[0], message=bounce)
    fake_sns.down = True
    response = await post_sns(hooks, message)
    assert (response.status_code, response.headers.get("retry-after")) == (503, "60")
    assert readers(hook_app)["gone@example.com"][0] == "confirmed"
    fake_sns.down = False  # SNS's retry, once the certificate downloads again
    assert (await post_sns(hooks, message)).status_code == 200
    assert readers(hook_app)["gone@example.com"][:3] == ("bounced", 0, "user_unknown")


async def test_ses_subscription_is_confirmed_only_on_an_sns_host(
    hooks: httpx.AsyncClient, sns_key: tuple[rsa.RSAPrivateKey, bytes], fake_sns: FakeSns
) -> None:
    key = sns_key[0]
    confirm = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    message = sns_message(
        key,
        kind="SubscriptionConfirmation",
        message="You have chosen to subscribe to the topic.",
        SubscribeURL=confirm,
        Token="abc",
    )
    assert (await post_sns(hooks, message)).status_code == 200
    assert "/?Action=ConfirmSubscription&Token=abc" in fake_sns.requests
    elsewhere = sns_message(
        key,
        kind="SubscriptionConfirmation",
        message="You have chosen to subscribe to the topic.",
        SubscribeURL="https://evil.example/?Action=ConfirmSubscription&Token=abc",
        Token="abc",
    )
    before = len(fake_sns.requests)
    assert (await post_sns(hooks, elsewhere)).status_code == 401
    assert len(fake_sns.requests) == before


# -- Mailgun ----------------------------------------------------------------------------------


async def test_mailgun_events_verified_judged_and_applied_once(
    hooks: httpx.AsyncClient, hook_app: FastAPI
) -> None:
    gone = mailgun_failed(
        "gone@example.com",
        severity="permanent",
        code=550,
        message="5.1.1 The email account that you tried to reach does not exist.",
        enhanced="5.1.1",
    )
    blocked = mailgun_failed(
        "fine@example.com",
        severity="permanent",
        code=550,
        message="5.7.1 Service unavailable; client host blocked using Spamhaus",
        enhanced="5.7.1",
    )
    temporary = mailgun_failed("full@example.com", severity="temporary", code=452, message="full")
    complained = {"id": "mg-complaint-1", "event": "complained", "recipient": "left@example.com"}
    for event in (gone, blocked, temporary, complained):
        response = await hooks.post("/hooks/bounces/mailgun", json=mailgun_call(MAILGUN_KEY, event))
        assert response.status_code == 200, response.text
    expected = {
        "gone@example.com": ("bounced", 0, "user_unknown", False),
        "full@example.com": ("confirmed", 0, "", False),  # Mailgun retries: nothing yet
        "fine@example.com": ("confirmed", 0, "blocked", False),
        "left@example.com": ("unsubscribed", 0, "", True),
    }
    assert readers(hook_app) == expected
    # The same event, freshly signed (Mailgun's retry): applied once.
    response = await hooks.post("/hooks/bounces/mailgun", json=mailgun_call(MAILGUN_KEY, gone))
    assert (response.status_code, response.json()["repeated"]) == (200, 1)
    assert readers(hook_app) == expected


async def test_mailgun_forged_stale_and_replayed_calls_are_refused(
    hooks: httpx.AsyncClient, hook_app: FastAPI
) -> None:
    event = mailgun_failed(
        "fine@example.com", severity="permanent", code=550, message="5.1.1 no such user"
    )
    replayed = mailgun_call(MAILGUN_KEY, {**event, "id": "first"})
    assert (await hooks.post("/hooks/bounces/mailgun", json=replayed)).status_code == 200
    assert readers(hook_app)["fine@example.com"][0] == "bounced"
    with Session(engine_of(hook_app)) as session:  # back on the list, for what follows
        session.execute(subscriber_table.update().values(status="confirmed"))
        session.commit()
    other = {**event, "id": "second"}
    forgeries = [
        {**replayed, "event-data": other},  # a captured signature, a new event
        mailgun_call("key-not-ours", other),
        mailgun_call(MAILGUN_KEY, other, timestamp=time.time() - 16 * 60),
        mailgun_call(MAILGUN_KEY, other, timestamp=time.time() + 16 * 60),
        {"event-data": other},
    ]
    for forged in forgeries:
        response = await hooks.post("/hooks/bounces/mailgun", json=forged)
        assert response.status_code == 401, (forged, response.text)
    assert readers(hook_app)["fine@example.com"][0] == "confirmed"
    response = await hooks.post("/hooks/bounces/mailgun", content=b"\xff not json")
    assert response.status_code == 400


# -- Postmark ---------------------------------------------------------------------------------


async def test_postmark_bounces_by_type_and_words_with_basic_auth(
    hooks: httpx.AsyncClient, hook_app: FastAPI
) -> None:
    gone = postmark_bounce(
        "gone@example.com",
        "HardBounce",
        type_code=1,
        details="smtp;550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
    )
    # A HardBounce whose words say it is about us: the reader stays.
    spamhaus = postmark_bounce(
        "fine@example.com",
        "HardBounce",
        type_code=1,
        details="smtp;554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org",
    )
    blocked = postmark_bounce("full@example.com", "Blocked", type_code=100006, details="")
    complaint = {**postmark_bounce("left@example.com", "SpamComplaint", type_code=512, details="")}
    complaint["RecordType"] = "SpamComplaint"
    for record in (gone, spamhaus, blocked, complaint):
        response = await hooks.post("/hooks/bounces/postmark", json=record, auth=POSTMARK)
        assert response.status_code == 200, response.text
    expected = {
        "gone@example.com": ("bounced", 0, "user_unknown", False),
        "full@example.com": ("confirmed", 0, "blocked", False),
        "fine@example.com": ("confirmed", 0, "blocked", False),
        "left@example.com": ("unsubscribed", 0, "", True),
    }
    assert readers(hook_app) == expected
    response = await hooks.post("/hooks/bounces/postmark", json=gone, auth=POSTMARK)
    assert response.json()["repeated"] == 1
    other = postmark_bounce("fine@example.com", "HardBounce", type_code=1, details="user unknown")
    for auth in (("postmark", "wrong"), ("other", POSTMARK[1]), None):
        response = await hooks.post("/hooks/bounces/postmark", json=other, auth=auth)
        assert response.status_code == 401
    assert readers(hook_app) == expected
    response = await hooks.post("/hooks/bounces/postmark", json=[1], auth=POSTMARK)
    assert response.status_code == 400


# -- SendGrid ---------------------------------------------------------------------------------


async def test_sendgrid_signed_batches_judged_and_applied_once(
    hooks: httpx.AsyncClient,
    hook_app: FastAPI,
    sendgrid_key: tuple[ec.EllipticCurvePrivateKey, str],
) -> None:
    key = sendgrid_key[0]
    events = [
        sendgrid_event(
            "gone@example.com", "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 unknown"
        ),
        # "blocked" is SendGrid saying the refusal is about the sender, whatever the words.
        sendgrid_event(
            "fine@example.com", "bounce", type="blocked", status="5.0.0", reason="550 no such user"
        ),
        sendgrid_event(
            "full@example.com", "bounce", type="bounce", status="5.2.2", reason="552 mailbox full"
        ),
        sendgrid_event("full@example.com", "deferred", response="450 try later"),
        sendgrid_event("left@example.com", "spamreport"),
    ]
    body = json.dumps(events).encode()
    response = await hooks.post(
        "/hooks/bounces/sendgrid", content=body, headers=sendgrid_headers(key, body)
    )
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 4
    expected = {
        "gone@example.com": ("bounced", 0, "user_unknown", False),
        "full@example.com": ("confirmed", 1, "mailbox_full", False),
        "fine@example.com": ("confirmed", 0, "blocked", False),
        "left@example.com": ("unsubscribed", 0, "", True),
    }
    assert readers(hook_app) == expected
    # SendGrid retries a whole batch: nothing applies twice.
    response = await hooks.post(
        "/hooks/bounces/sendgrid", content=body, headers=sendgrid_headers(key, body)
    )
    assert (response.status_code, response.json()["repeated"]) == (200, 4)
    assert readers(hook_app) == expected
    # Forged: altered after signing, signed by another key, or not signed at all.
    forged_body = body.replace(b"full@example.com", b"fine@example.com")
    other_key = ecdsa_key()[0]
    forged_calls = [
        (forged_body, sendgrid_headers(key, body)),
        (forged_body, sendgrid_headers(other_key, forged_body)),
        (forged_body, {"Content-Type": "application/json"}),
        (
            forged_body,
            {**sendgrid_headers(key, forged_body), "X-Twilio-Email-Event-Webhook-Timestamp": "1"},
        ),
    ]
    for content, headers in forged_calls:
        response = await hooks.post("/hooks/bounces/sendgrid", content=content, headers=headers)
        assert response.status_code == 401
    assert readers(hook_app) == expected
    not_a_list = b'{"event": "bounce"}'
    response = await hooks.post(
        "/hooks/bounces/sendgrid", content=not_a_list, headers=sendgrid_headers(key, not_a_list)
    )
    assert response.status_code == 400


# -- all of them ------------------------------------------------------------------------------


async def test_a_provider_without_its_secret_has_no_hook(
    sqlite_url: str, smtp_server: SMTPServer
) -> None:
    with open_app(make_settings(sqlite_url, smtp_server)) as app:
        async with asgi_client(app) as client:
            for provider in ("ses", "mailgun", "postmark", "sendgrid", "other"):
                response = await client.post(f"/hooks/bounces/{provider}", json={})
                assert response.status_code == 404


def test_hooks_on_a_real_server(hook_settings: Settings, fake_sns: FakeSns) -> None:
    """`serve` as in production: uvicorn on a socket, a Postmark call and a big SNS one."""
    engine = store.open_store(hook_settings.database_url)
    try:
        with Session(engine) as session:
            subscribers.add(
                session, hook_settings, email="gone@example.com", confirmed=True, now=utcnow()
            )
    finally:
        engine.dispose()
    with running_server(
        lambda base_url: create_app(
            hook_settings.model_copy(update={"base_url": base_url}), sns_fetch=fake_sns.fetch
        )
    ) as base_url:
        record = postmark_bounce(
            "gone@example.com", "HardBounce", type_code=1, details="550 5.1.1 no such user"
        )
        response = httpx.post(f"{base_url}/hooks/bounces/postmark", json=record, auth=POSTMARK)
        assert response.status_code == 200, response.text
        assert response.json()["bounced"] == 1
        # Far above the forms' 16 KB cap, as SES notifications with headers can be.
        big = {"Type": "Notification", "Message": "x" * 200_000}
        response = httpx.post(f"{base_url}/hooks/bounces/ses", json=big)
        assert response.status_code == 401  # read in full, then refused: not a 413
