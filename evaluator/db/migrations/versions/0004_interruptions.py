"""A lease lost because the daemon died is counted apart from a crashed child
(`submission.interruptions`), and a submission that keeps taking the daemon down is held
for the organiser (status `held`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Leases lost before this revision were counted in `attempts` with crashed children; they
stay there (which of the two stopped them was not recorded).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "ck_submission_submission_status"
_BEFORE = ("submitted", "running", "finished", "failed", "cancelled")
_AFTER = (*_BEFORE, "held")


def _status_check(batch: object, values: tuple[str, ...]) -> None:
    batch.drop_constraint(op.f(_CHECK), type_="check")  # type: ignore[attr-defined]
    listed = ", ".join(f"'{value}'" for value in values)
    batch.create_check_constraint(op.f(_CHECK), sa.text(f"status IN ({listed})"))  # type: ignore[attr-defined]


def upgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.add_column(sa.Column("interruptions", sa.Integer(), nullable=False,
                                   server_default="0"))
        _status_check(batch, _AFTER)
    with op.batch_alter_table("submission") as batch:
        batch.alter_column("interruptions", server_default=None)


def downgrade() -> None:
    op.execute("UPDATE submission SET status = 'submitted' WHERE status = 'held'")
    with op.batch_alter_table("submission") as batch:
        _status_check(batch, _BEFORE)
        batch.drop_column("interruptions")
