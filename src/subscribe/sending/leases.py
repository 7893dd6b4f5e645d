"""Who holds a delivery: the lease owner ("host:pid:start:run"), renewing a lease, and
taking over the deliveries of a process that no longer runs."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from subscribe.db.models import DeliveryStatus, UTCDateTime, delivery_table

D = delivery_table.c


def _process_start_ticks(pid: int) -> str:
    """Start time of a process (Linux /proc), to tell a live PID from a reused one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "0"


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    pid: int
    started: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @classmethod
    def this_process(cls) -> Owner:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _process_start_ticks(pid))

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}:{self.run}"

    @staticmethod
    def parse(text: str) -> tuple[str, int, str] | None:
        parts = text.split(":")
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        return parts[0], int(parts[1]), parts[2]


def _is_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return _process_start_ticks(pid) in (started, "0")


def renew_lease(engine: Engine, *, owner: Owner, until: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            delivery_table.update()
            .where(D.lease_until.is_not(None))
            .where(D.claimed_by == str(owner))
            .values(lease_until=until)
        )


def take_over_abandoned(engine: Engine, *, now: datetime, host: str) -> int:
    """Requeue deliveries held by a process that no longer runs.

    On this host a dead PID is proof enough; elsewhere we wait for the lease to run out.
    The relay may have accepted such a message before the kill: it goes again with the same
    Message-ID, at most one per connection that was in flight.
    """
    with engine.connect() as connection:
        holders = connection.execute(
            sa.select(D.claimed_by).where(D.lease_until.is_not(None)).distinct()
        ).scalars()
        dead = []
        for holder in holders:
            parsed = Owner.parse(holder)
            if parsed and parsed[0] == host and not _is_alive(parsed[1], parsed[2]):
                dead.append(holder)
    abandoned = D.lease_until < sa.literal(now, UTCDateTime)
    if dead:
        abandoned = sa.or_(abandoned, D.claimed_by.in_(dead))
    with (
        engine.connect().execution_options(immediate=True) as connection,
        connection.begin(),
    ):
        result = connection.execute(
            delivery_table.update()
            .where(D.lease_until.is_not(None))
            .where(abandoned)
            .values(status=DeliveryStatus.QUEUED.value, due_at=now, lease_until=None)
        )
        return max(result.rowcount, 0)


def requeue_held(engine: Engine, *, owner: Owner, now: datetime) -> int:
    """Queue again, due at once, every delivery ``owner`` holds: after it lost the database
    in the middle of a pass, its claims are its own to give back (no lease to wait out)."""
    with engine.begin() as connection:
        result = connection.execute(
            delivery_table.update()
            .where(D.lease_until.is_not(None))
            .where(D.claimed_by == str(owner))
            .values(status=DeliveryStatus.QUEUED.value, due_at=now, lease_until=None)
        )
        return max(result.rowcount, 0)
