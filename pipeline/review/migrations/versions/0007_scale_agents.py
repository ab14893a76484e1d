"""A year of calls and agents who dispute: what counts for the KPIs kept on each call so the
dashboards aggregate in SQL (``calls.counted_review_id``, ``calls.reviewed_score``,
``call_items.human_answer``), the indexes the queue and dashboards filter and sort by, how an
answer was given (``review_answers.how``: ``chosen`` or ``accept_all``), and agent users tied to
their agent id (``users.agent_id``). Existing reviewed calls get their counted columns filled by
:func:`pipeline.review.db.upgrade` once the schema is at the newest revision (so the filling
uses the models as they are then).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("counted_review_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("reviewed_score", sa.Float, nullable=True))
    with op.batch_alter_table("call_items") as batch:
        batch.add_column(sa.Column("human_answer", sa.String(10), nullable=True))
    with op.batch_alter_table("review_answers") as batch:
        batch.add_column(sa.Column("how", sa.String(20), nullable=False, server_default="chosen"))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("agent_id", sa.String(200), nullable=True))
    op.create_index("ix_calls_started_call", "calls", ["started_at", "call_id"])
    op.create_index("ix_calls_agent_started", "calls", ["agent_id", "started_at"])
    op.create_index("ix_calls_queue_started", "calls", ["queue", "started_at"])
    op.create_index("ix_calls_score", "calls", ["score"])
    op.create_index("ix_calls_counted_review_id", "calls", ["counted_review_id"])
    op.create_index("ix_call_items_item_id", "call_items", ["item_id"])
    op.create_index("ix_reviews_call_state", "reviews", ["call_id", "state"])
    op.create_index("ix_users_agent_id", "users", ["agent_id"])


def downgrade() -> None:
    for name, table in (("ix_users_agent_id", "users"), ("ix_reviews_call_state", "reviews"),
                        ("ix_call_items_item_id", "call_items"), ("ix_calls_counted_review_id", "calls"),
                        ("ix_calls_score", "calls"), ("ix_calls_queue_started", "calls"),
                        ("ix_calls_agent_started", "calls"), ("ix_calls_started_call", "calls")):
        op.drop_index(name, table)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("agent_id")
    with op.batch_alter_table("review_answers") as batch:
        batch.drop_column("how")
    with op.batch_alter_table("call_items") as batch:
        batch.drop_column("human_answer")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("reviewed_score")
        batch.drop_column("counted_review_id")
