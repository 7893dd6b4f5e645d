"""The exceptions `subscribe` raises, in one tree.

    SubscribeError                 every error a user can cause; ``str()`` is a one-line message
    ├── ConfigError                a missing or invalid setting (names the variable)
    ├── InvalidAddress             an address that cannot receive mail
    ├── SuppressedAddress          an erased address that may only come back through the web form
    ├── NotFound                   no subscriber / post with that key
    ├── InvalidChoice              a cadence or category that is not on offer
    ├── SourceError                a post source (flags, Markdown file, feed) that cannot be read
    ├── ImportFileError            a CSV file that cannot be read as a subscriber list
    ├── TokenError                 a link token that cannot be used
    │   ├── TokenInvalid           tampered, truncated or signed for another purpose
    │   └── TokenExpired           validly signed, but too old (confirm links only)
    ├── RateLimited                too many requests from one client or for one address
    ├── HookRefused                a relay's webhook call whose signature or credentials fail
    ├── HookInvalid                a relay's webhook call, authenticated, that cannot be read
    ├── HookUnavailable            a webhook call that cannot be checked now (SNS unreachable)
    └── DeliveryError              the relay did not take a message
        ├── RelayUnavailable       the relay cannot be reached; nothing was sent, retry later
        ├── RelayFatal             the relay refuses us (auth, TLS, sender): stop at once
        ├── TransientDeliveryError 4xx for a recipient: try again later
        ├── PermanentDeliveryError 5xx for a recipient: give up
        ├── AmbiguousDelivery      the connection broke after DATA began: the relay may hold it
        └── ConnectionDropped      the connection broke before DATA: reconnect and send again

Web and CLI adapters catch ``SubscribeError`` and turn it into a 4xx page or a one-line
message with a non-zero exit; anything else is a bug and deserves its traceback.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks a message for the catalogs (``templates/locales``) without translating it:
    the web translates it into the visitor's language when it shows it."""
    return message


class SubscribeError(Exception):
    """Base of every error a user can cause. ``public`` is what a page shows when the
    message itself holds details for the admin (a validator's English): a catalog
    message, translated by the web."""

    def __init__(self, *args: object, public: str = "") -> None:
        super().__init__(*args)
        self.public = public or (str(args[0]) if args else "")


class ConfigError(SubscribeError):
    pass


class InvalidAddress(SubscribeError):
    pass


class SuppressedAddress(SubscribeError):
    pass


class NotFound(SubscribeError):
    pass


class InvalidChoice(SubscribeError):
    """A cadence or category that is not on offer."""


class SourceError(SubscribeError):
    pass


class ImportFileError(SubscribeError):
    pass


class TokenError(SubscribeError):
    pass


class TokenInvalid(TokenError):
    pass


class TokenExpired(TokenError):
    def __init__(self, message: str, subject: object = None) -> None:
        super().__init__(message)
        # The signature was valid, so the payload (a tokens.TokenSubject: id and address
        # digest) can be trusted enough to offer a new link to the same subscriber.
        self.subject = subject


class RateLimited(SubscribeError):
    pass


class HookRefused(SubscribeError):
    """Not signed as the provider signs (or stale, or replayed): changes nothing."""


class HookInvalid(SubscribeError):
    """A body that is not what the provider sends."""


class HookUnavailable(SubscribeError):
    """Cannot be checked now (the signing certificate does not download): the provider
    retries on a 5xx, so the event is not lost."""


class DeliveryError(SubscribeError):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RelayUnavailable(DeliveryError):
    pass


class RelayFatal(DeliveryError):
    pass


class TransientDeliveryError(DeliveryError):
    pass


class PermanentDeliveryError(DeliveryError):
    def __init__(self, message: str, code: int | None = None, *, reply: str = "") -> None:
        super().__init__(message, code)
        # The server's own words, "5.1.1 no such user": the refusal's reason is read from
        # them (``refusals``), and only a reason that says the address is gone bounces.
        self.reply = reply


class AmbiguousDelivery(DeliveryError):
    pass


class ConnectionDropped(DeliveryError):
    """The connection broke (or the relay said 421) before DATA: nothing was sent."""
