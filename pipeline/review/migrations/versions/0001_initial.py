"""The first schema: users, calls and their automatic items, reviews and their answers, assignments.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(80), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(200), primary_key=True),
        sa.Column("out_dir", sa.Text, nullable=False),
        sa.Column("agent_id", sa.String(200), index=True),
        sa.Column("queue", sa.String(200), index=True),
        sa.Column("started_at", sa.String(40), index=True),
        sa.Column("duration_s", sa.Float),
        sa.Column("channels", sa.Integer),
        sa.Column("score", sa.Float),
        sa.Column("auto_fail", sa.Boolean, nullable=False),
        sa.Column("low_confidence_items", sa.Integer, nullable=False),
        sa.Column("customer_sentiment_end", sa.Float),
        sa.Column("template", sa.String(200)),
        sa.Column("config_hash", sa.String(40)),
        sa.Column("result_sha256", sa.String(64), nullable=False),
        sa.Column("metadata_json", sa.JSON, nullable=False),
        sa.Column("loaded_at", TS, nullable=False),
    )
    op.create_table(
        "call_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("section", sa.String(200)),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.String(10), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("points", sa.Float, nullable=False),
        sa.Column("auto_fail", sa.Boolean, nullable=False),
        sa.Column("looked_for", sa.Text),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.UniqueConstraint("call_id", "item_id"),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("submitted_at", TS),
        sa.UniqueConstraint("call_id", "reviewer_id"),
    )
    op.create_table(
        "review_answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("answer", sa.String(10), nullable=False),
        sa.Column("auto_answer", sa.String(10)),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("answered_at", TS, nullable=False),
        sa.UniqueConstraint("review_id", "item_id"),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("call_id", "reviewer_id"),
    )


def downgrade() -> None:
    for table in ("assignments", "review_answers", "reviews", "call_items", "calls", "users"):
        op.drop_table(table)
