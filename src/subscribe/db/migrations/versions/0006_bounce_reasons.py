"""subscriber: when bounces were counted, the last bounce's reason, complaints

Bounces are now judged by their reason. A counted bounce decays: ``bounce_counted_at``
(when the last counted bounce's message was sent) lets the next bounce tell whether 30 days
passed, or a delivery succeeded, since. ``last_bounce_reason`` and ``last_bounce_at`` keep
the latest refusal of any kind, so refusals about the sender can be reported by reason and
domain. ``complained_at`` records a feedback-loop complaint ("this is spam").

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("bounce_counted_at", "last_bounce_at", "last_bounce_reason", "complained_at")


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bounce_counted_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("last_bounce_at", sa.DateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("last_bounce_reason", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("complained_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)
