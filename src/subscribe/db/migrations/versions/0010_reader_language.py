"""reader language: the language of a reader's emails and pages

``subscriber.language`` holds a BCP 47 tag (``de``, ``pt-BR``) chosen at sign-up (form
field, ``?lang=``, Accept-Language) or on the preferences page. Readers from before have
"" and get the site's ``SUBSCRIBE_LANGUAGE``. Adding a column with a constant default
rewrites nothing on either database.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sa.String(length=35), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_column("language")
