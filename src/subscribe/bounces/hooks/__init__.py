"""Bounces and complaints from the relays people send through, as webhooks.

Amazon SES (through SNS), Mailgun, Postmark and SendGrid report bounces and complaints as
HTTP calls, not as mail. Each provider module verifies a call the way that provider signs
it and reads its events into one shape (``events``); ``apply`` judges them like bounce
mail: the same reasons and actions, complaints unsubscribing at once, each event once.
"""

from .apply import HookRun, apply_batch
from .events import Batch, EventKind, HookEvent
from .receivers import PROVIDERS, Receiver, receivers_for
from .sns import Fetch

__all__ = [
    "PROVIDERS",
    "Batch",
    "EventKind",
    "Fetch",
    "HookEvent",
    "HookRun",
    "Receiver",
    "apply_batch",
    "receivers_for",
]
