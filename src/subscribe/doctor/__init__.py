"""`subscribe doctor`: is this setup one whose mail lands?

Three families of checks, each a list of ``Check`` lines (ok / warn / fail, with the fix):

- ``settings``: the secret key, BASE_URL, MAIL_FROM, the bounce address and VERP, DKIM keys;
- ``relay``: it answers, STARTTLS and its certificate, AUTH, PIPELINING, SIZE, a message of
  our size (and with ``send_to``, one sent);
- ``dns``: the From domain's MX, SPF, DMARC and DKIM key, and the relay's reverse DNS,
  through the system resolver or ``SUBSCRIBE_DNS_RESOLVER``.

The doctor only reads and asks: nothing is stored, and only ``send_to`` sends mail.
"""

from __future__ import annotations

from subscribe.config import Settings

from .checks import Check, Status, render_sample
from .dns_checks import dns_checks
from .relay import relay_checks
from .settings_checks import settings_checks

__all__ = ["Check", "Status", "run_checks"]


async def run_checks(settings: Settings, *, send_to: str = "") -> list[Check]:
    checks = settings_checks(settings)
    sample = render_sample(settings)
    checks += await relay_checks(settings, sample, send_to=send_to)
    checks += dns_checks(settings)
    return checks
