"""partial indexes on delivery.due_at and delivery.lease_until

Only waiting and held deliveries are indexed: finished ones (nearly all of them) no longer
cost index writes when claimed and recorded.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("due_at", "lease_until")


def upgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_delivery_{column}", table_name="delivery")
        condition = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_delivery_{column}",
            "delivery",
            [column],
            sqlite_where=condition,
            postgresql_where=condition,
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_delivery_{column}", table_name="delivery")
        op.create_index(f"ix_delivery_{column}", "delivery", [column])
