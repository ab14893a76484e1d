"""Alembic environment: migrations run on the connection :func:`pipeline.review.db.upgrade` gives,
inside the one transaction it holds (so ``begin_transaction`` below starts none of its own)."""

from alembic import context

from pipeline.review.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
