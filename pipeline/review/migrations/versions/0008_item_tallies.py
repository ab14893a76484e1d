"""Item tallies per day, agent and queue (``item_tallies``, see pipeline/review/tallies.py), so
the dashboards' item pass rates over a year read sums; and an index of the reviewed answers
(partial: only items with a human answer) for the automatic-vs-human agreement. The tallies of
an existing database are computed by :func:`pipeline.review.db.upgrade` after the migration.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_tallies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.String(10), nullable=True),
        sa.Column("agent_id", sa.String(200), nullable=True),
        sa.Column("queue", sa.String(200), nullable=True),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("yes", sa.Integer, nullable=False),
        sa.Column("decided", sa.Integer, nullable=False),
    )
    op.create_index("ix_item_tallies_day_agent", "item_tallies", ["day", "agent_id"])
    op.create_index("ix_call_items_reviewed", "call_items", ["item_id", "human_answer", "answer"],
                    sqlite_where=sa.text("human_answer IS NOT NULL"),
                    postgresql_where=sa.text("human_answer IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_call_items_reviewed", "call_items")
    op.drop_index("ix_item_tallies_day_agent", "item_tallies")
    op.drop_table("item_tallies")
