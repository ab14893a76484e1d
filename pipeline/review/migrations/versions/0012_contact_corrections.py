"""The interaction record: the automatic contact block of each call (``calls.contact``, from
call.json ``contact``: reason, actions, outcome, follow-ups, mentions) and the reviewers'
corrections of it (``contact_corrections``), kept beside it: rows only added, the latest counts.
Rows loaded before have no block (NULL): the app reads it from call.json until the next load of
a changed result.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("contact", sa.JSON, nullable=True))
    op.create_table(
        "contact_corrections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("automatic", sa.JSON, nullable=True),
        sa.Index("ix_contact_corrections_call_id", "call_id", "id"),
    )


def downgrade() -> None:
    op.drop_table("contact_corrections")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("contact")
