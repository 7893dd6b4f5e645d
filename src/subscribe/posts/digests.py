"""The `digest` use case: queue each daily or weekly reader's digest of the period, once.

A period is named by the local date of its slot: a daily digest's is the latest
``SUBSCRIBE_DIGEST_HOUR`` that has passed in ``SUBSCRIBE_TIMEZONE``, a weekly one's the
latest such hour on ``SUBSCRIBE_DIGEST_WEEKDAY``. Queuing is two set-based statements per
cadence in one transaction (``db.deliveries.enqueue_digests``); sending is the ledger's,
as for posts, so a killed run resumes and a period's digest has one Message-ID. `digest`
runs it then sends; `worker` runs it whenever a new period begins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.deliveries import digest_readers, enqueue_digests, hold_watermarks
from subscribe.db.models import DIGEST_CADENCES, post_table
from subscribe.sending.report import RunReport

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def period_of(settings: Settings, cadence: str, now: datetime) -> str:
    """The period a digest run at ``now`` is for: 'daily:2026-12-08', 'weekly:2026-12-07'."""
    zone = ZoneInfo(settings.timezone)
    local = now.astimezone(zone)

    def slot(day: date) -> datetime:
        # Built from the date, not by replacing the hour: right across a DST change.
        return datetime.combine(day, time(settings.digest_hour), tzinfo=zone)

    day = local.date()
    if cadence == "weekly":
        day -= timedelta(days=(day.weekday() - WEEKDAYS.index(settings.digest_weekday)) % 7)
        if slot(day) > local:
            day -= timedelta(days=7)
    elif slot(day) > local:
        day -= timedelta(days=1)
    return f"{cadence}:{day.isoformat()}"


def periods(settings: Settings, now: datetime) -> dict[str, str]:
    return {cadence: period_of(settings, cadence, now) for cadence in DIGEST_CADENCES}


@dataclass(frozen=True, slots=True)
class DigestBatch:
    cadence: str
    period: str
    readers: int  # queued (a dry run: who would be)


@dataclass(slots=True)
class DigestOutcome:
    batches: list[DigestBatch] = field(default_factory=list)
    report: RunReport | None = None  # None: a dry run, or nothing to send

    @property
    def queued(self) -> int:
        return sum(batch.readers for batch in self.batches)


def _latest_post_id(connection: sa.Connection) -> int:
    return int(connection.execute(sa.select(sa.func.max(post_table.c.id))).scalar() or 0)


def plan_digests(engine: Engine, settings: Settings, *, now: datetime) -> list[DigestBatch]:
    """Who would get a digest now, changing nothing (`digest --dry-run`)."""
    batches = []
    with engine.connect() as connection:
        through = _latest_post_id(connection)
        for cadence, period in periods(settings, now).items():
            readers = digest_readers(cadence=cadence, through=through, period=period)
            count = connection.execute(sa.select(sa.func.count()).where(readers)).scalar_one()
            batches.append(DigestBatch(cadence, period, int(count)))
    return batches


def queue_digests(engine: Engine, settings: Settings, *, now: datetime) -> list[DigestBatch]:
    """Queue the digests of the current periods, listing the posts announced so far. In
    one transaction: a crash queues all of them or none, and a second run in a period
    queues nothing."""
    batches = []
    with store.write_session(engine) as session:
        connection = session.connection()
        hold_watermarks(connection)  # no post, no cadence change in flight meanwhile
        through = _latest_post_id(connection)
        for cadence, period in periods(settings, now).items():
            queued = enqueue_digests(
                connection, cadence=cadence, period=period, through=through, at=now
            )
            batches.append(DigestBatch(cadence, period, queued))
        session.commit()
    return batches


def digest(
    engine: Engine,
    settings: Settings,
    *,
    now: Callable[[], datetime],
    dry_run: bool = False,
    send: Callable[[], RunReport],
) -> DigestOutcome:
    """Queue this period's digests and run a sending pass (which also finishes digests a
    killed run left). A dry run only counts."""
    if dry_run:
        return DigestOutcome(plan_digests(engine, settings, now=now()))
    outcome = DigestOutcome(queue_digests(engine, settings, now=now()))
    outcome.report = send()
    return outcome


class DigestSchedule:
    """For `worker`: queue digests when a period begins (and once at start), not on every
    poll, since the queuing statement reads every digest reader."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._done: dict[str, str] = {}

    def due(self, now: datetime) -> bool:
        return periods(self._settings, now) != self._done

    def run(self, engine: Engine, *, now: datetime) -> int:
        batches = queue_digests(engine, self._settings, now=now)
        self._done = {batch.cadence: batch.period for batch in batches}
        return sum(batch.readers for batch in batches)
