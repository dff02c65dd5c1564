"""Alembic environment: runs on the connection Store.upgrade() opened (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from evaluator.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "probeboard's migrations run through evaluator.db.store.Store.upgrade(), which passes "
        "an open connection; the alembic command line is not configured"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
