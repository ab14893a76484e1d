"""The live wall: moments of calls in progress flagged by supervisors (``live_flags``), and the
audit trail of who heard a call's audio (``audio_access``: recordings played, listen-ins).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(200), nullable=False, index=True),
        sa.Column("at_s", sa.Float, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audio_access",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("call_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("client", sa.String(100), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Index("ix_audio_access_call_at", "call_id", "at"),
    )


def downgrade() -> None:
    op.drop_table("audio_access")
    op.drop_table("live_flags")
