"""the digest watermark read from the reader's latest digest

Queuing a period's digests no longer moves ``subscriber.digest_after`` for every digest
reader (one UPDATE of a million rows): a reader's watermark is the larger of it and the
``digest_through`` of their latest digest, which this partial index (digest rows only, so
posts' deliveries cost it nothing) finds with one probe.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NAME = "ix_delivery_digest_through"


def upgrade() -> None:
    condition = sa.text("kind = 'digest'")
    op.create_index(
        NAME,
        "delivery",
        ["subscriber_id", "digest_through"],
        sqlite_where=condition,
        postgresql_where=condition,
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="delivery")
