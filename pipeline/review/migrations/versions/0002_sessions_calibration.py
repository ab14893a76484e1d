"""Log-in sessions, calibration sessions, assignments tied to a calibration.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("call_id", sa.String(200), sa.ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("calibration_id", sa.Integer, nullable=True))
        batch.create_index("ix_assignments_calibration_id", ["calibration_id"])
        batch.create_foreign_key("fk_assignments_calibration", "calibrations", ["calibration_id"], ["id"],
                                 ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_constraint("fk_assignments_calibration", type_="foreignkey")
        batch.drop_index("ix_assignments_calibration_id")
        batch.drop_column("calibration_id")
    op.drop_table("web_sessions")
    op.drop_table("calibrations")
