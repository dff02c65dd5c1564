"""Initial schema: challenge, phase, team, submission, evaluation, task_score,
standings_snapshot, publication.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Migrations spell out their types instead of importing evaluator.models: the models move
on, a migration must keep creating the schema as it was at its revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    # VARCHAR + CHECK on both backends (models._enum).
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=20)


def _time(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenge")),
        sa.UniqueConstraint("slug", name=op.f("uq_challenge_slug")),
    )
    op.create_table(
        "phase",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("k_folds", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("tasks", sa.JSON(), nullable=False),
        sa.Column("counting_rule", _enum("counting_rule", "latest_public", "best"),
                  nullable=False),
        sa.Column("hidden_tasks", sa.Boolean(), nullable=False),
        sa.Column("show_per_task_after_close", sa.Boolean(), nullable=False),
        _time("opens_at"),
        _time("closes_at"),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenge.id"],
                                name=op.f("fk_phase_challenge_id_challenge")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase")),
        sa.UniqueConstraint("challenge_id", "slug", name=op.f("uq_phase_challenge_id_slug")),
    )
    op.create_table(
        "team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source", _enum("team_source", "evalai", "local"), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenge.id"],
                                name=op.f("fk_team_challenge_id_challenge")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("challenge_id", "source", "source_id",
                            name=op.f("uq_team_challenge_id_source_source_id")),
    )
    op.create_table(
        "standings_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=False),
        _time("created_at", nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["phase_id"], ["phase.id"],
                                name=op.f("fk_standings_snapshot_phase_id_phase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standings_snapshot")),
    )
    op.create_index(op.f("ix_standings_snapshot_phase_id_created_at"), "standings_snapshot",
                    ["phase_id", "created_at"])
    op.create_table(
        "submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("source", _enum("submission_source", "evalai", "local"), nullable=False),
        sa.Column("source_id", sa.String(length=300), nullable=False),
        sa.Column("status", _enum("submission_status", "submitted", "running", "finished",
                                  "failed", "cancelled"), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=300), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("is_baseline", sa.Boolean(), nullable=False),
        sa.Column("is_host", sa.Boolean(), nullable=False),
        sa.Column("method_name", sa.String(length=200), nullable=True),
        _time("submitted_at", nullable=False),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("stdout", sa.Text(), nullable=True),
        sa.Column("stderr", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        _time("lease_expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["phase_id"], ["phase.id"],
                                name=op.f("fk_submission_phase_id_phase")),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_submission_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_submission_source_source_id")),
    )
    op.create_index(op.f("ix_submission_phase_id_status"), "submission", ["phase_id", "status"])
    op.create_index(op.f("ix_submission_team_id"), "submission", ["team_id"])
    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("config_digest", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("code_version", sa.String(length=100), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("probe_type", sa.String(length=20), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("mean_quality", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"],
                                name=op.f("fk_evaluation_submission_id_submission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation")),
    )
    op.create_index(op.f("ix_evaluation_submission_id"), "evaluation", ["submission_id"])
    op.create_table(
        "publication",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.Integer(), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("target", _enum("target", "evalai", "github", "files"), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", _enum("publication_status", "pending", "done", "failed"),
                  nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("created_at", nullable=False),
        _time("done_at"),
        sa.CheckConstraint("phase_id IS NOT NULL OR submission_id IS NOT NULL",
                           name=op.f("ck_publication_has_subject")),
        sa.ForeignKeyConstraint(["phase_id"], ["phase.id"],
                                name=op.f("fk_publication_phase_id_phase")),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"],
                                name=op.f("fk_publication_submission_id_submission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication")),
    )
    op.create_index(op.f("ix_publication_status_created_at"), "publication",
                    ["status", "created_at"])
    op.create_table(
        "task_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=True),
        sa.Column("quality", sa.Double(), nullable=True),
        sa.Column("mean", sa.Double(), nullable=True),
        sa.Column("std", sa.Double(), nullable=True),
        sa.Column("failed_folds", sa.Integer(), nullable=False),
        sa.Column("fold_scores", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluation.id"], ondelete="CASCADE",
                                name=op.f("fk_task_score_evaluation_id_evaluation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_score")),
        sa.UniqueConstraint("evaluation_id", "task", name=op.f("uq_task_score_evaluation_id_task")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes too, on both backends.
    for table in ("task_score", "publication", "evaluation", "submission",
                  "standings_snapshot", "team", "phase", "challenge"):
        op.drop_table(table)
