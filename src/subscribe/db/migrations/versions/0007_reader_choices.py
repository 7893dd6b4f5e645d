"""reader choices: cadence, categories, the digest watermark, a pending address; digest rows

``subscriber.cadence`` (post, daily, weekly, paused) and ``subscriber_category`` (one row per
chosen category; none means all) decide who a post is queued for, in the same INSERT ...
SELECT. ``subscriber.digest_after`` is the id of the last post dealt with for the reader.
A digest is a delivery with a ``period`` and the post ids it lists; (kind, period,
subscriber) is unique, so a period's digest is queued once. ``pending_email`` holds a new
address until its confirmation link is followed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cadence", sa.String(length=16), nullable=False, server_default="post")
        )
        batch_op.add_column(
            sa.Column("digest_after", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("pending_email", sa.String(length=320), nullable=False, server_default="")
        )
    op.create_table(
        "subscriber_category",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", "category"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("digest_after", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("digest_through", sa.Integer(), nullable=True))
    # A unique index, not a constraint: SQLite adds it without rebuilding the table (a
    # rebuild would have to carry the partial indexes of 0003 over).
    op.create_index(
        "uq_delivery_period", "delivery", ["kind", "period", "subscriber_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_delivery_period", table_name="delivery")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        for column in ("digest_through", "digest_after", "period"):
            batch_op.drop_column(column)
    op.drop_table("subscriber_category")
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        for column in ("pending_email", "digest_after", "cadence"):
            batch_op.drop_column(column)
