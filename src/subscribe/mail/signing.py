"""The side of a DKIM signing process (``sending.render_process.SigningRenderer``).

A spawned process imports the module of the function it is asked to run: this one needs
only the settings and the keys, not the templates, the database layer or the sending loop,
so a signing process is up in a fraction of the time a render process takes.
"""

from __future__ import annotations

import signal

from subscribe.config import Settings

from .dkim import DkimSigner, Unsigned
from .dkim_keys import dkim_signer

_signer: DkimSigner | None = None  # in a signing process: set by ``start``


def start(settings: Settings) -> None:
    """The signing process's initializer: its keys, read once."""
    global _signer
    # Ctrl-C reaches the whole process group: the sending process decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _signer = dkim_signer(settings)


def ready() -> bool:
    return _signer is not None


def sign(batch: list[Unsigned | None]) -> list[bytes]:
    """In the signing process: ``sign_all`` with its own signer."""
    assert _signer is not None
    return sign_all(_signer, batch)


def sign_all(signer: DkimSigner, batch: list[Unsigned | None]) -> list[bytes]:
    """The DKIM-Signature fields of each message (b"" for one left unsigned)."""
    header = signer.header
    return [b"" if unsigned is None else header(unsigned) for unsigned in batch]
