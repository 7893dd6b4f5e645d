"""delivery.kind: confirmation and welcome emails are ledger rows too (post_id empty)

Every email goes through the ledger, so a relay outage or a killed process delays a
confirmation instead of losing it. A transactional row has no post; ``kind`` says what it
is. A partial index lets a sender that only handles transactional mail (the loop inside
`serve`) find its rows without walking a million queued post deliveries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PARTIAL = ("due_at", "lease_until")
MESSAGES_DUE = "due_at IS NOT NULL AND kind <> 'post'"


def _drop_partial_indexes() -> None:
    # Dropped around the batch: SQLite's copy-and-move would not keep their WHERE clauses.
    for column in PARTIAL:
        op.drop_index(f"ix_delivery_{column}", table_name="delivery")


def _create_partial_indexes() -> None:
    for column in PARTIAL:
        condition = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_delivery_{column}",
            "delivery",
            [column],
            sqlite_where=condition,
            postgresql_where=condition,
        )


def upgrade() -> None:
    _drop_partial_indexes()
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="post"))
        batch_op.alter_column("post_id", existing_type=sa.Integer(), nullable=True)
    _create_partial_indexes()
    condition = sa.text(MESSAGES_DUE)
    op.create_index(
        "ix_delivery_message_due",
        "delivery",
        ["due_at"],
        sqlite_where=condition,
        postgresql_where=condition,
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_message_due", table_name="delivery")
    op.execute("DELETE FROM delivery WHERE post_id IS NULL")
    _drop_partial_indexes()
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.alter_column("post_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("kind")
    _create_partial_indexes()
