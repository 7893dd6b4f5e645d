"""The providers' side of the bounce webhooks, for tests: keys made here, payloads shaped as
each provider documents them, signed as each provider signs them, and a local HTTP server
that stands in for SNS (its signing certificate, its SubscribeURL). No network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-bounces"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"

# AWS's documented order of the signed fields, per message type.
_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def rsa_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A key and a self-signed PEM certificate, as SNS publishes at SigningCertURL."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


class FakeSns:
    """Serves the certificate (any ``.pem`` path) and records every GET it answers."""

    def __init__(self, certificate: bytes) -> None:
        self.certificate = certificate
        self.requests: list[str] = []
        self.down = False  # answer 503, as a failing fetch would
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if fake.down:
                    self.send_error(503)
                    return
                body = fake.certificate if self.path.endswith(".pem") else b"<ConfirmResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def fetch(self, url: str) -> bytes:
        """What the app is given instead of the network: the same path, from here."""
        parts = urlsplit(url)
        local = f"http://127.0.0.1:{self._server.server_port}{parts.path}"
        response = httpx.get(local + (f"?{parts.query}" if parts.query else ""), timeout=5)
        response.raise_for_status()
        return response.content

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def sns_message(
    key: rsa.RSAPrivateKey,
    *,
    kind: str = "Notification",
    message: str = "",
    version: str = "1",
    cert_url: str = CERT_URL,
    topic: str = TOPIC,
    **extra: str,
) -> dict[str, str]:
    fields = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        **extra,
    }
    signed = "".join(
        f"{name}\n{fields[name]}\n" for name in _SNS_FIELDS[kind] if name in fields
    ).encode()
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(signed, padding.PKCS1v15(), algorithm)
    return {
        **fields,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def ses_mail(address: str, *, message_id: str = "") -> dict[str, Any]:
    headers = [{"name": "To", "value": address}]
    if message_id:
        headers.append({"name": "Message-ID", "value": message_id})
    return {
        "timestamp": "2026-12-01T12:00:00.000Z",
        "source": "news@blog.example",
        "messageId": "0100018c-ses-own-id",
        "destination": [address],
        "headersTruncated": False,
        "headers": headers,
        "commonHeaders": {"to": [address], "messageId": message_id, "subject": "A post"},
    }


def ses_bounce(
    address: str,
    *,
    bounce_type: str,
    subtype: str,
    status: str = "",
    diagnostic: str = "",
    event_publishing: bool = False,
) -> str:
    recipient: dict[str, str] = {"emailAddress": address, "action": "failed"}
    if status:
        recipient["status"] = status
    if diagnostic:
        recipient["diagnosticCode"] = diagnostic
    kind = {"eventType": "Bounce"} if event_publishing else {"notificationType": "Bounce"}
    return json.dumps(
        {
            **kind,
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": subtype,
                "bouncedRecipients": [recipient],
                "timestamp": "2026-12-01T12:00:01.000Z",
                "feedbackId": "0100018c-feedback",
            },
            "mail": ses_mail(address),
        }
    )


def ses_complaint(address: str, feedback_type: str = "abuse") -> str:
    return json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": address}],
                "complaintFeedbackType": feedback_type,
                "timestamp": "2026-12-01T12:00:01.000Z",
                "feedbackId": "0100018c-feedback",
            },
            "mail": ses_mail(address),
        }
    )


def mailgun_call(
    signing_key: str,
    event: dict[str, Any],
    *,
    timestamp: float | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    token = token or secrets.token_hex(25)
    digest = hmac.new(signing_key.encode(), (stamp + token).encode(), hashlib.sha256)
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": digest.hexdigest()},
        "event-data": event,
    }


def mailgun_failed(
    address: str, *, severity: str, code: int, message: str, enhanced: str = ""
) -> dict[str, Any]:
    return {
        "id": secrets.token_urlsafe(16),
        "event": "failed",
        "severity": severity,
        "reason": "bounce" if severity == "permanent" else "generic",
        "recipient": address,
        "timestamp": time.time(),
        "delivery-status": {
            "code": code,
            "message": message,
            "description": "",
            "enhanced-code": enhanced,
            "attempt-no": 1,
        },
        "message": {"headers": {"to": address, "message-id": "20261201.abc@blog.example"}},
    }


def postmark_bounce(address: str, bounce_type: str, *, details: str, type_code: int) -> dict:
    descriptions = {
        "HardBounce": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Blocked": "ISP block.",
        "SoftBounce": "Unable to temporarily deliver this message.",
    }
    return {
        "RecordType": "Bounce",
        "ID": secrets.randbelow(10**10),
        "Type": bounce_type,
        "TypeCode": type_code,
        "Name": bounce_type,
        "Tag": "",
        "MessageID": str(uuid.uuid4()),
        "ServerID": 23,
        "MessageStream": "broadcast",
        "Description": descriptions.get(bounce_type, ""),
        "Details": details,
        "Email": address,
        "From": "news@blog.example",
        "BouncedAt": "2026-12-01T12:00:01Z",
        "DumpAvailable": False,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "A post",
    }


def ecdsa_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key and its public half as SendGrid shows it: base64 DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(der).decode()


def sendgrid_headers(key: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def sendgrid_event(address: str, event: str, **fields: str) -> dict[str, Any]:
    return {
        "email": address,
        "timestamp": int(time.time()),
        "smtp-id": "<20261201.abc@blog.example>",
        "event": event,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **fields,
    }
