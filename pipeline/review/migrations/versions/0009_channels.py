"""Written conversations beside calls: the contact channel of every call row
(``calls.channel``: ``voice``, ``email`` or ``chat``; every existing row is a call, so
``voice``), a written conversation's number of messages (``calls.messages``), the index the
queue filters a channel by (newest first), and the channel of the item tallies
(``item_tallies.channel``, so the dashboards' item pass rates split and filter by channel;
existing tallies count calls only, so ``voice``).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("channel", sa.String(20), nullable=False, server_default="voice"))
        batch.add_column(sa.Column("messages", sa.Integer, nullable=True))
    op.create_index("ix_calls_channel_started", "calls", ["channel", "started_at"])
    with op.batch_alter_table("item_tallies") as batch:
        batch.add_column(sa.Column("channel", sa.String(20), nullable=False, server_default="voice"))


def downgrade() -> None:
    with op.batch_alter_table("item_tallies") as batch:
        batch.drop_column("channel")
    op.drop_index("ix_calls_channel_started", "calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("messages")
        batch.drop_column("channel")
