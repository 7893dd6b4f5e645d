"""The relay, as `notify` will meet it: answering, TLS with a certificate valid for its
name, our login, PIPELINING and SIZE, and a message of our size (one sent with send_to)."""

from __future__ import annotations

import ssl

import aiosmtplib

from subscribe.config import Settings

from .checks import Check, fail, ok, render_sample, warn

_LOCAL = {"localhost", "127.0.0.1", "::1"}


async def relay_checks(
    settings: Settings, sample: bytes | None, *, send_to: str = ""
) -> list[Check]:
    checks: list[Check] = []
    s = settings
    where = f"{s.smtp_host}:{s.smtp_port}"
    smtp = aiosmtplib.SMTP(
        hostname=s.smtp_host,
        port=s.smtp_port,
        use_tls=s.smtp_security == "tls",
        start_tls=False,
        validate_certs=True,
        timeout=min(s.smtp_timeout, 15),
    )
    try:
        try:
            banner = await smtp.connect()
        except (ssl.SSLError, ssl.CertificateError) as exc:
            return [_tls_failure(where, exc)]
        except (aiosmtplib.SMTPException, OSError) as exc:
            cause = exc.__cause__
            if isinstance(cause, ssl.SSLError | ssl.CertificateError):
                return [_tls_failure(where, cause)]
            return [
                fail(
                    "relay",
                    f"cannot talk to {where}: {exc}",
                    "check SUBSCRIBE_SMTP_HOST, SUBSCRIBE_SMTP_PORT and the firewall",
                )
            ]
        checks.append(ok("relay", f"{where} answers: {banner.code} {banner.message[:60]}"))
        await smtp.ehlo()
        checks.append(await _tls(smtp, settings, where))
        if smtp.get_transport_info("sslcontext") is None and s.smtp_security != "none":
            return checks  # no TLS: nothing more is tried in plaintext (the password least)
        checks.append(await _auth(smtp, settings))
        checks.append(_pipelining(smtp))
        checks += await _size(smtp, settings, sample)
        if send_to:
            checks.append(await _send(smtp, settings, send_to))
    except aiosmtplib.SMTPException as exc:
        checks.append(fail("relay", f"{where} broke off: {exc}", "check the relay's logs"))
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
    return checks


def _tls_failure(where: str, exc: BaseException) -> Check:
    reason = getattr(exc, "verify_message", "") or str(exc)
    return fail(
        "starttls",
        f"the TLS certificate of {where} is not valid: {reason}",
        "give the relay a certificate for the name in SUBSCRIBE_SMTP_HOST",
    )


async def _tls(smtp: aiosmtplib.SMTP, settings: Settings, where: str) -> Check:
    if settings.smtp_security == "tls":
        return ok("starttls", "implicit TLS, certificate valid for " + settings.smtp_host)
    offered = smtp.supports_extension("starttls")
    if settings.smtp_security == "none":
        if offered:
            return warn(
                "starttls",
                "the relay offers STARTTLS but SUBSCRIBE_SMTP_SECURITY=none sends in plaintext",
                "set SUBSCRIBE_SMTP_SECURITY=starttls",
            )
        if settings.smtp_host in _LOCAL:
            return ok("starttls", "not offered; SUBSCRIBE_SMTP_SECURITY=none to a local relay")
        return fail(
            "starttls",
            f"{where} offers no STARTTLS: mail and password cross the network in plaintext",
            "turn on TLS at the relay, then SUBSCRIBE_SMTP_SECURITY=starttls",
        )
    if not offered:
        return fail(
            "starttls",
            f"{where} does not offer STARTTLS, so notify will refuse to send",
            "turn on STARTTLS at the relay (or SUBSCRIBE_SMTP_SECURITY=tls on port 465)",
        )
    try:
        await smtp.starttls(validate_certs=True)
    except (ssl.SSLError, ssl.CertificateError) as exc:
        return _tls_failure(where, exc)
    except aiosmtplib.SMTPException as exc:
        if isinstance(exc.__cause__, ssl.SSLError | ssl.CertificateError):
            return _tls_failure(where, exc.__cause__)
        raise
    await smtp.ehlo()
    return ok("starttls", f"offered; certificate valid for {settings.smtp_host}")


async def _auth(smtp: aiosmtplib.SMTP, settings: Settings) -> Check:
    if not settings.smtp_username:
        if smtp.supports_extension("auth"):
            return warn(
                "auth",
                "the relay offers AUTH but no SUBSCRIBE_SMTP_USERNAME is set",
                "set SUBSCRIBE_SMTP_USERNAME and SUBSCRIBE_SMTP_PASSWORD if it wants a login",
            )
        return ok("auth", "no login configured, none offered")
    try:
        await smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
    except aiosmtplib.SMTPAuthenticationError as exc:
        return fail(
            "auth",
            f"the relay refused our login as {settings.smtp_username}: {exc.code} {exc.message}",
            "check SUBSCRIBE_SMTP_USERNAME and SUBSCRIBE_SMTP_PASSWORD",
        )
    except aiosmtplib.SMTPException as exc:
        return fail("auth", f"cannot log in: {exc}", "check that the relay offers AUTH")
    return ok("auth", f"logged in as {settings.smtp_username}")


def _pipelining(smtp: aiosmtplib.SMTP) -> Check:
    if smtp.supports_extension("pipelining"):
        return ok("pipelining", "advertised")
    return warn(
        "pipelining",
        "not advertised: every message costs four round trips instead of two",
        "turn on PIPELINING at the relay (Postfix and Exim have it by default)",
    )


async def _size(smtp: aiosmtplib.SMTP, settings: Settings, sample: bytes | None) -> list[Check]:
    if sample is None:
        return []
    size = len(sample)
    limit = smtp.esmtp_extensions.get("size", "")
    checks = []
    if not smtp.supports_extension("size"):
        checks.append(
            warn("size", "SIZE not advertised", "turn on the SIZE extension at the relay")
        )
    elif limit.isdigit() and 0 < int(limit) < size:
        return [
            fail(
                "size",
                f"the relay takes at most {limit} bytes; our emails are ~{size}",
                "raise the relay's message size limit",
            )
        ]
    else:
        checks.append(ok("size", f"advertised ({limit or 'no limit'} bytes)"))
    sender = settings.bounce_address or settings.mail_from_address
    try:
        await smtp.mail(sender, options=[f"SIZE={size}"] if smtp.supports_extension("size") else [])
        await smtp.rset()
    except aiosmtplib.SMTPSenderRefused as exc:
        checks.append(
            fail(
                "message",
                f"the relay refused MAIL FROM:<{sender}> for {size} bytes: "
                f"{exc.code} {exc.message}",
                "allow this sender address at the relay",
            )
        )
    else:
        checks.append(
            ok("message", f"a message of our size ({size} bytes) from <{sender}> is taken")
        )
    return checks


async def _send(smtp: aiosmtplib.SMTP, settings: Settings, send_to: str) -> Check:
    message = render_sample(settings, send_to)
    if message is None:
        return fail("send", "no sample email could be made", "fix the settings above")
    try:
        await smtp.sendmail(settings.mail_from_address, [send_to], message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusal = exc.recipients[0]
        return fail("send", f"{send_to} refused: {refusal.code} {refusal.message}", "check it")
    except aiosmtplib.SMTPResponseException as exc:
        return fail("send", f"refused: {exc.code} {exc.message}", "check the relay's logs")
    return ok("send", f"sent a sample email of {len(message)} bytes to {send_to}")
