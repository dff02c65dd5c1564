"""What the daemon needs: a phase's fixed scoring settings, the submission's file URL and
queue receipt handle, a hidden flag, outbox scheduling (action, backoff, dependency,
content digest, lease) and the operator's audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Existing phases take their scoring settings from their first evaluation's config, so a
database from 0001 keeps refusing runs that would not be comparable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Settings that do not change a score (EvaluationConfig.scoring_settings() at 0002).
_BOOKKEEPING = ("enable_plots", "output_fold_results", "update_leaderboard")


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("phase") as batch:
        batch.add_column(sa.Column("scoring", sa.JSON(), nullable=True))
    with op.batch_alter_table("submission") as batch:
        batch.add_column(sa.Column("file_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("receipt_handle", sa.Text(), nullable=True))
        batch.add_column(sa.Column("hidden", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("submission") as batch:
        batch.alter_column("hidden", server_default=None)
    with op.batch_alter_table("publication") as batch:
        batch.add_column(sa.Column("action", sa.String(length=40), nullable=False,
                                   server_default="publish"))
        batch.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("depends_on_id", sa.Integer(), nullable=True))
        batch.add_column(_time("next_attempt_at"))
        batch.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch.add_column(_time("lease_expires_at"))
        batch.create_foreign_key(op.f("fk_publication_depends_on_id_publication"),
                                 "publication", ["depends_on_id"], ["id"])
        batch.create_index(op.f("ix_publication_status_next_attempt_at"),
                           ["status", "next_attempt_at"])
    with op.batch_alter_table("publication") as batch:
        batch.alter_column("action", server_default=None)
    op.create_table(
        "operator_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["phase_id"], ["phase.id"],
                                name=op.f("fk_operator_action_phase_id_phase")),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"],
                                name=op.f("fk_operator_action_submission_id_submission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_action")),
    )
    _fill_phase_scoring()


def _fill_phase_scoring() -> None:
    connection = op.get_bind()
    first_configs = connection.execute(sa.text(
        "SELECT s.phase_id, e.config FROM evaluation e JOIN submission s "
        "ON s.id = e.submission_id ORDER BY e.id"
    )).all()
    seen: set[int] = set()
    for phase_id, config in first_configs:
        if phase_id in seen:
            continue
        seen.add(phase_id)
        settings = json.loads(config) if isinstance(config, str) else dict(config)
        for key in _BOOKKEEPING:
            settings.pop(key, None)
        connection.execute(
            sa.text("UPDATE phase SET scoring = :scoring WHERE id = :id")
            .bindparams(sa.bindparam("scoring", type_=sa.JSON())),
            {"scoring": settings, "id": phase_id},
        )


def downgrade() -> None:
    op.drop_table("operator_action")
    with op.batch_alter_table("publication") as batch:
        batch.drop_index(op.f("ix_publication_status_next_attempt_at"))
        batch.drop_constraint(op.f("fk_publication_depends_on_id_publication"),
                              type_="foreignkey")
        for column in ("lease_expires_at", "lease_owner", "next_attempt_at", "depends_on_id",
                       "content_digest", "action"):
            batch.drop_column(column)
    with op.batch_alter_table("submission") as batch:
        for column in ("hidden", "receipt_handle", "file_url"):
            batch.drop_column(column)
    with op.batch_alter_table("phase") as batch:
        batch.drop_column("scoring")
