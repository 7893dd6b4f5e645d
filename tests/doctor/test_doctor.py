"""`subscribe doctor` against a correct and a broken local setup: a real DNS server on
127.0.0.1 serving each zone, and the aiosmtpd relay with and without STARTTLS and AUTH
(a throwaway CA, trusted through SSL_CERT_FILE, signs its certificate). No network."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.smtp import AuthResult
from clihelp import run, settings_env
from conftest import make_settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dnsserver import DNSTestServer, dns_server
from mailserver import RecordingHandler, SMTPServer

from subscribe.mail import dkim_keys

DOMAIN = "blog.example"
USER, PASSWORD = "newsletter", "relay-password-1"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def tls_files(folder: Path, *, names: list[x509.GeneralName]) -> tuple[Path, ssl.SSLContext]:
    """A CA certificate (to trust) and a server context whose certificate it signed."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("doctor test CA"))
        .issuer_name(_name("doctor test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("relay"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
    # handled=False: aiosmtpd answers the failure (535) itself.
    good = (auth.login, auth.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=good, handled=False)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    paths = {"ours": tmp_path / "dkim.pem", "other": tmp_path / "other.pem"}
    for path in paths.values():
        dkim_keys.write_private_key(path, dkim_keys.generate_key("rsa"))
    return paths


def record(path: Path) -> str:
    return dkim_keys.record_value(dkim_keys.load_private_key(path, "rsa"))


def correct_zone(keys: dict[str, Path]) -> dict[tuple[str, str], list[str]]:
    return {
        (DOMAIN, "MX"): ["10 mail.blog.example."],
        (DOMAIN, "TXT"): ["v=spf1 mx include:_spf.relay.example ~all", "site-verification=x"],
        ("_spf.relay.example", "TXT"): ["v=spf1 ip4:127.0.0.1 -all"],
        (f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:dmarc@blog.example"],
        (f"news._domainkey.{DOMAIN}", "TXT"): [record(keys["ours"])],
        ("1.0.0.127.in-addr.arpa", "PTR"): ["mail.blog.example."],
        ("mail.blog.example", "A"): ["127.0.0.1"],
    }


def broken_zone(keys: dict[str, Path]) -> dict[tuple[str, str], list[str]]:
    return {
        (DOMAIN, "TXT"): ["v=spf1 a mx +all"],  # no MX, anyone may send
        (f"news._domainkey.{DOMAIN}", "TXT"): [record(keys["other"])],  # not our key
        ("1.0.0.127.in-addr.arpa", "PTR"): ["mail.other.example."],
        ("mail.other.example", "A"): ["192.0.2.25"],  # does not come back to the relay
    }


def doctor_settings(smtp: SMTPServer, dns: DNSTestServer, key: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "secret_key": "k3Y-" + "0123456789abcdefghijklmnopqrstuvwxyz",
        "base_url": "https://news.blog.example",
        "smtp_security": "starttls",
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "bounce_address": "bounces@blog.example",
        "bounce_imap_host": "imap.blog.example",
        "dkim_selector": "news",
        "dkim_private_key_file": str(key),
        "dns_resolver": dns.address,
    }
    values.update(overrides)
    return make_settings("sqlite:///unused.db", smtp, **values)


@pytest.fixture
def tls_relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPServer]:
    ca, context = tls_files(tmp_path, names=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    server = SMTPServer(
        RecordingHandler(pipelining=True),
        tls_context=context,
        authenticator=_authenticator,
        auth_require_tls=True,
    ).start()
    yield server
    server.stop()


def lines(output: str) -> dict[str, list[str]]:
    """The doctor's lines by topic, e.g. {'spf': ['ok    spf: ...']}."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = re.match(r"^(ok|warn|fail)\s+([a-z ]+):", line)
        if match:
            found.setdefault(match.group(2), []).append(line)
    return found


def statuses(output: str) -> dict[str, list[str]]:
    return {topic: [line.split()[0] for line in ls] for topic, ls in lines(output).items()}


def test_a_correct_setup_passes(
    tls_relay: SMTPServer, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with dns_server(correct_zone(keys)) as dns:
        settings_env(monkeypatch, doctor_settings(tls_relay, dns, keys["ours"]))
        result = run("doctor", "--send-to", "me@example.org")
        print(result.stdout)
        assert result.exit_code == 0, result.output
        assert set(statuses(result.stdout)) >= {
            "secret key", "base url", "mail from", "bounces", "dkim key", "relay", "starttls",
            "auth", "pipelining", "size", "message", "send", "mx", "spf", "dmarc",
            "alignment", "dkim dns", "reverse dns",
        }  # fmt: skip
        assert all(s == ["ok"] for s in statuses(result.stdout).values()), result.stdout
        # The sample went out signed, and verifies against the published key.
        sent = tls_relay.messages[-1]
        assert sent.rcpt_tos == ["me@example.org"]
        assert dkim.verify(sent.data, dnsfunc=dns.txt)


def test_a_broken_setup_fails_with_a_fix_for_each(
    smtp_server: SMTPServer, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with dns_server(broken_zone(keys)) as dns:
        settings = doctor_settings(
            smtp_server,
            dns,
            keys["ours"],
            secret_key="short-key-123456",
            base_url="http://news.blog.example",
            bounce_address="",
        )
        settings_env(monkeypatch, settings)
        result = run("doctor")
        print(result.stdout)
    assert result.exit_code == 1
    found = statuses(result.stdout)
    assert found["secret key"] == ["warn"] and found["base url"] == ["warn"]
    assert found["bounces"] == ["warn"]
    assert found["starttls"] == ["fail"]  # the plain relay offers none
    assert found["mx"] == ["warn"] and found["spf"] == ["fail"] and found["dmarc"] == ["fail"]
    assert found["dkim dns"] == ["fail"] and found["reverse dns"] == ["fail"]
    for line in result.stdout.splitlines():
        if line.startswith(("fail", "warn")):
            assert "-> fix: " in line, line
    assert "auth" not in found  # no password is tried without TLS


def test_a_certificate_for_another_name_fails(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, context = tls_files(tmp_path, names=[x509.DNSName("other.example")])
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    relay = SMTPServer(RecordingHandler(), tls_context=context).start()
    try:
        with dns_server(correct_zone(keys)) as dns:
            settings_env(monkeypatch, doctor_settings(relay, dns, keys["ours"]))
            result = run("doctor")
    finally:
        relay.stop()
    assert result.exit_code == 1
    (line,) = lines(result.stdout)["starttls"]
    assert line.startswith("fail") and "not valid" in line and "127.0.0.1" in line


def test_a_wrong_password_fails(
    tls_relay: SMTPServer, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with dns_server(correct_zone(keys)) as dns:
        settings = doctor_settings(tls_relay, dns, keys["ours"], smtp_password="wrong")
        settings_env(monkeypatch, settings)
        result = run("doctor")
    assert result.exit_code == 1
    (line,) = lines(result.stdout)["auth"]
    assert line.startswith("fail") and "refused our login" in line


def test_spf_over_ten_lookups_fails(
    tls_relay: SMTPServer, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = correct_zone(keys)
    includes = " ".join(f"include:s{i}.example" for i in range(6))
    zone[(DOMAIN, "TXT")] = [f"v=spf1 {includes} -all"]
    for i in range(6):
        zone[(f"s{i}.example", "TXT")] = ["v=spf1 a mx -all" if i else "v=spf1 ip4:1.2.3.4 -all"]
    with dns_server(zone) as dns:
        settings_env(monkeypatch, doctor_settings(tls_relay, dns, keys["ours"]))
        result = run("doctor")
    assert result.exit_code == 1
    (line,) = lines(result.stdout)["spf"]
    assert line.startswith("fail") and "16 DNS lookups" in line


def test_an_unreachable_relay_and_resolver_fail_without_traceback(
    keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = SMTPServer()  # never started: connections are refused
    with dns_server({}) as dns:
        settings = doctor_settings(relay, dns, keys["ours"])
    settings_env(monkeypatch, settings)  # the DNS server is gone too
    result = run("doctor")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert lines(result.stdout)["relay"][0].startswith("fail")
    assert lines(result.stdout)["mx"][0].startswith("fail")
