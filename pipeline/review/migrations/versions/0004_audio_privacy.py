"""What the audio route needs to stay private: the run's input roots and whether the call's
text is redacted, per call.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("input_roots", sa.JSON, nullable=True))
        batch.add_column(sa.Column("pii_redacted", sa.Boolean, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("pii_redacted")
        batch.drop_column("input_roots")
