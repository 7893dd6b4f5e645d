"""webhook_event: the relays' bounce and complaint events already applied

Amazon SES (through SNS), Mailgun, Postmark and SendGrid retry a webhook until it is
answered, and may deliver one event twice: each event's own id is kept, so it acts once.
Mailgun's signing tokens are kept too (provider ``mailgun-token``): a captured, validly
signed request cannot be replayed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_event",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "event_id"),
    )


def downgrade() -> None:
    op.drop_table("webhook_event")
