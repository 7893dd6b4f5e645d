"""post.image_url and post_category: what a post's email shows besides its text

A feed names a post's image and categories; the email shows both. Categories get a table of
their own, one row per (post, category), so that sending a post only to the readers who
chose one of its categories is a join, never a string search.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "image_url",
                sa.String(length=2000),
                nullable=False,
                server_default="",
            )
        )
    op.create_table(
        "post_category",
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "category"),
    )
    op.create_index("ix_post_category_category", "post_category", ["category"])


def downgrade() -> None:
    op.drop_index("ix_post_category_category", table_name="post_category")
    op.drop_table("post_category")
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_column("image_url")
