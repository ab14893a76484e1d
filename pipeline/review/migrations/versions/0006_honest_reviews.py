"""Honest reviews: every submitted review version kept (``review_submissions``), a lead's
review marked final (``reviews.final``), disputes of submitted answers and their resolution
(``disputes``), and who set a call's speaker roles and when (``speaker_swaps``).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "review_submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.UniqueConstraint("review_id", "version"),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("review_submissions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("answer", sa.String(10), nullable=False),
        sa.Column("proposed", sa.String(10), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raised_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("resolved_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("new_answer", sa.String(10), nullable=True),
        sa.Column("resolution", sa.Text, nullable=False),
        sa.Column("result_submission_id", sa.Integer, sa.ForeignKey("review_submissions.id"), nullable=True),
    )
    op.create_table(
        "speaker_swaps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("agent", sa.String(20), nullable=False),
        sa.Column("previous", sa.String(20), nullable=False),
        sa.Column("set_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("speaker_swaps")
    op.drop_table("disputes")
    op.drop_table("review_submissions")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("final")
