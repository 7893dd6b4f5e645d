"""The admin's dry run: what the rules make of each message, with no database at all.

One ``Verdict`` per message: its bounced recipients with kind, status, reason and action,
or a note saying why it is none (a complaint, or not a bounce). Nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .complaints import parse_complaint
from .parse import parse_bounce

JSON_KEYS = ("file", "address", "kind", "status", "reason", "action")


@dataclass(frozen=True, slots=True)
class Row:
    file: str
    address: str
    kind: str  # hard | soft
    status: str  # enhanced status code, '' if none
    reason: str
    action: str  # remove | count | ignore

    def as_dict(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in JSON_KEYS}


@dataclass(frozen=True, slots=True)
class Verdict:
    file: str
    rows: list[Row]
    note: str = ""  # why there are no rows: "complaint" or "not a bounce"


def classify(
    messages: Iterable[tuple[str, bytes]], *, bounce_address: str = ""
) -> Iterator[Verdict]:
    for name, raw in messages:
        complaint = parse_complaint(raw, bounce_address=bounce_address)
        if complaint is not None:
            yield Verdict(name, [], f"complaint ({complaint.feedback_type})")
            continue
        report = parse_bounce(raw, bounce_address=bounce_address)
        if report is None:
            yield Verdict(name, [], "not a bounce")
            continue
        rows = [
            Row(name, r.address, r.kind.value, r.status, r.reason.value, r.action.value)
            for r in report.recipients
        ]
        yield Verdict(name, rows)
