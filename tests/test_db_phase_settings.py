"""A phase keeps the scoring settings of its first run and refuses runs scored otherwise,
on both backends; migration 0002 gives phases from 0001 the settings they were scored with."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evaluator.db.challenges import STANDALONE_CHALLENGE
from evaluator.db.evaluations import record_local_run
from evaluator.db.models import Challenge, Evaluation, Phase, Submission, TaskScore, Team
from evaluator.db.store import Store
from evaluator.scoring.config import BOOKKEEPING_KEYS
from evaluator.scoring.results import EvaluationResult
from evaluator.support.errors import PhaseSettingsMismatch
from tests.builders import make_result
from tests.databases import head_revision

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(store: Store, result: EvaluationResult, run_dir: Path, *, phase: str = "dev",
           method: str = "my_encoder") -> tuple[int, bool]:
    return record_local_run(store, result, phase=phase, method_name=method, run_dir=run_dir)


def counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {model.__tablename__: session.scalar(
                    sa.select(sa.func.count()).select_from(model)) or 0
                for model in (Challenge, Phase, Team, Submission, Evaluation, TaskScore)}


def test_same_settings_join_the_same_phase(store: Store, tmp_path: Path) -> None:
    first, created = record(store, make_result(), tmp_path / "run1")
    second, created_again = record(store, make_result(), tmp_path / "run2", method="other")
    assert created and created_again and first != second
    with store.session() as session:
        (phase,) = session.scalars(sa.select(Phase)).all()
        assert phase.scoring == make_result().config.scoring_settings()
        assert phase.tasks == ["biomass_mean", "clouds"]
        assert {s.phase_id for s in session.scalars(sa.select(Submission))} == {phase.id}


@pytest.mark.parametrize("changes", [
    {"k_folds": 6}, {"epochs": 3}, {"probe_type": "ridge"}, {"seed": 7},
    {"k_folds": 3, "epochs": 2, "probe_type": "mlp", "seed": 0},
])
def test_other_settings_are_refused_naming_each_key(store: Store, tmp_path: Path,
                                                    changes: dict[str, Any]) -> None:
    first = make_result()
    record(store, first, tmp_path / "run1")
    before = counts(store)
    with pytest.raises(PhaseSettingsMismatch) as raised:
        record(store, make_result(**changes), tmp_path / "run2", method="newcomer")
    message = str(raised.value)
    phase_settings = first.config.scoring_settings()
    assert set(raised.value.differences) == set(changes)
    for key, value in changes.items():
        assert f"{key} (phase: {phase_settings[key]!r}, this run: {value!r})" in message
    for key in set(phase_settings) - set(changes):
        assert f"{key} (" not in message
    assert counts(store) == before  # no team, submission or evaluation for the refused run
    with store.session() as session:
        assert session.scalar(sa.select(Team).where(Team.name == "newcomer")) is None
        assert session.scalars(sa.select(Phase.scoring)).one() == phase_settings


def test_other_task_set_is_refused(store: Store, tmp_path: Path) -> None:
    full = make_result()
    record(store, full, tmp_path / "run1")
    before = counts(store)
    fewer = dataclasses.replace(full, tasks=full.tasks[:1])
    with pytest.raises(PhaseSettingsMismatch, match=r"tasks \(phase: \['biomass_mean', "
                                                    r"'clouds'\], this run: \['biomass_mean'\]"):
        record(store, fewer, tmp_path / "run2")
    assert counts(store) == before
    # The same tasks in another order are the same task set.
    reordered = dataclasses.replace(full, tasks=full.tasks[::-1])
    assert record(store, reordered, tmp_path / "run3")[1]


def test_another_phase_takes_other_settings(store: Store, tmp_path: Path) -> None:
    record(store, make_result(), tmp_path / "run1", phase="dev")
    record(store, make_result(seed=7), tmp_path / "run2", phase="dev-seed7")
    with store.session() as session:
        seeds = {slug: seed for slug, seed in session.execute(sa.select(Phase.slug, Phase.seed))}
    assert seeds == {"dev": 42, "dev-seed7": 7}


# ---- migration 0002 fills phase.scoring for a database from 0001 ------------------------

_challenge = sa.table("challenge", sa.column("id", sa.Integer), sa.column("slug", sa.String),
                      sa.column("title", sa.String), sa.column("created_at", sa.DateTime(True)))
_phase = sa.table(
    "phase", sa.column("id", sa.Integer), sa.column("challenge_id", sa.Integer),
    sa.column("slug", sa.String), sa.column("k_folds", sa.Integer),
    sa.column("seed", sa.Integer), sa.column("tasks", sa.JSON),
    sa.column("counting_rule", sa.String), sa.column("hidden_tasks", sa.Boolean),
    sa.column("show_per_task_after_close", sa.Boolean))
_team = sa.table("team", sa.column("id", sa.Integer), sa.column("challenge_id", sa.Integer),
                 sa.column("name", sa.String), sa.column("source", sa.String),
                 sa.column("source_id", sa.String))
_submission = sa.table(
    "submission", sa.column("id", sa.Integer), sa.column("phase_id", sa.Integer),
    sa.column("team_id", sa.Integer), sa.column("source", sa.String),
    sa.column("source_id", sa.String), sa.column("status", sa.String),
    sa.column("is_public", sa.Boolean), sa.column("is_baseline", sa.Boolean),
    sa.column("is_host", sa.Boolean), sa.column("submitted_at", sa.DateTime(True)),
    sa.column("attempts", sa.Integer))
_evaluation = sa.table(
    "evaluation", sa.column("id", sa.Integer), sa.column("submission_id", sa.Integer),
    sa.column("config_digest", sa.String), sa.column("config", sa.JSON),
    sa.column("code_version", sa.String), sa.column("seed", sa.Integer),
    sa.column("probe_type", sa.String), sa.column("warnings", sa.JSON),
    sa.column("finished_at", sa.DateTime(True)))
_task_score = sa.table(
    "task_score", sa.column("id", sa.Integer), sa.column("evaluation_id", sa.Integer),
    sa.column("task", sa.String), sa.column("kind", sa.String),
    sa.column("failed_folds", sa.Integer), sa.column("fold_scores", sa.JSON),
    sa.column("metrics", sa.JSON))
_publication = sa.table(
    "publication", sa.column("id", sa.Integer), sa.column("phase_id", sa.Integer),
    sa.column("submission_id", sa.Integer), sa.column("target", sa.String),
    sa.column("payload", sa.JSON), sa.column("status", sa.String),
    sa.column("attempts", sa.Integer), sa.column("created_at", sa.DateTime(True)))


def _seed_0001(store: Store, configs: dict[str, list[dict[str, Any]]]) -> None:
    """Rows as a 0001 database held them: per phase slug, its evaluations' configs in order.
    Ids come from the database (an explicit id would not advance PostgreSQL's sequence)."""

    def insert(session: Any, table: sa.TableClause, **values: Any) -> int:
        return int(session.execute(table.insert().values(**values)
                                   .returning(table.c.id)).scalar_one())

    with store.write() as session:
        challenge = insert(session, _challenge, slug=STANDALONE_CHALLENGE, title="Standalone",
                           created_at=T0)
        team = insert(session, _team, challenge_id=challenge, name="my_encoder",
                      source="local", source_id="my_encoder")
        for slug, phase_configs in configs.items():
            phase = insert(session, _phase, challenge_id=challenge, slug=slug, k_folds=5,
                           seed=42, tasks=["biomass_mean", "clouds"], counting_rule="best",
                           hidden_tasks=False, show_per_task_after_close=False)
            for n, config in enumerate(phase_configs):
                submission = insert(
                    session, _submission, phase_id=phase, team_id=team, source="local",
                    source_id=f"{slug}/run{n}", status="finished", is_public=True,
                    is_baseline=False, is_host=False, submitted_at=T0, attempts=0)
                evaluation = insert(
                    session, _evaluation, submission_id=submission, config_digest="0" * 64,
                    config=config, code_version="0.1", seed=config["seed"],
                    probe_type=config["probe_type"], warnings=[], finished_at=T0)
                insert(session, _task_score, evaluation_id=evaluation, task="clouds",
                       kind="classification", failed_folds=0, fold_scores=[0.5, None],
                       metrics={})
                insert(session, _publication, phase_id=phase, submission_id=submission,
                       target="evalai", payload={"n": submission}, status="pending",
                       attempts=0, created_at=T0)


def test_migration_0002_fills_phase_scoring_from_the_first_evaluation(
        empty_store: Store, tmp_path: Path) -> None:
    store = empty_store
    store.upgrade("0001")
    assert store.current_revision() == "0001"
    first = make_result().config.to_dict()  # with the bookkeeping keys, as 0001 stored it
    later = make_result(seed=9).config.to_dict()
    other_phase = make_result(k_folds=3).config.to_dict()
    _seed_0001(store, {"phase1": [first, later], "phase2": [other_phase],
                       "phase3": []})  # phase3: never evaluated

    store.upgrade()

    assert store.current_revision() == head_revision()
    expected = make_result().config.scoring_settings()
    with store.session() as session:
        scoring = {slug: value for slug, value
                   in session.execute(sa.select(Phase.slug, Phase.scoring))}
        assert scoring == {"phase1": expected, "phase3": None,
                           "phase2": make_result(k_folds=3).config.scoring_settings()}
        assert not set(BOOKKEEPING_KEYS) & set(scoring["phase1"] or {})
        # The rows of 0001 survived the table rebuilds, with their new columns' defaults.
        submissions = session.scalars(sa.select(Submission).order_by(Submission.id)).all()
        assert [(s.hidden, s.receipt_handle) for s in submissions] == [(False, None)] * 3
        assert session.scalar(sa.select(sa.func.count()).select_from(Evaluation)) == 3
        assert session.scalar(sa.select(sa.func.count()).select_from(TaskScore)) == 3
        rows = session.execute(sa.text(
            "SELECT id, action, depends_on_id, payload FROM publication ORDER BY id")).all()
        assert [(r[1], r[2]) for r in rows] == [("publish", None)] * 3
        payloads = [r[3] if isinstance(r[3], dict) else json.loads(r[3]) for r in rows]
        assert payloads == [{"n": s.id} for s in submissions]

    # The migrated phase now refuses a run with other settings, and takes the same ones.
    with pytest.raises(PhaseSettingsMismatch, match=r"seed \(phase: 42, this run: 9\)"):
        record(store, make_result(seed=9), tmp_path / "run-a", phase="phase1")
    assert record(store, make_result(), tmp_path / "run-b", phase="phase1")[1]
    # A phase without evaluations adopts the settings of its first run.
    assert record(store, make_result(), tmp_path / "run-c", phase="phase3")[1]
    with store.session() as session:
        phase3 = session.scalars(sa.select(Phase).where(Phase.slug == "phase3")).one()
        assert phase3.scoring == expected


def test_downgrade_and_upgrade_keep_the_data(store: Store, tmp_path: Path) -> None:
    """SQLite rebuilds tables to drop columns: rows that other rows refer to must survive,
    and foreign keys are enforced again afterwards."""
    record(store, make_result(), tmp_path / "run1")
    before = counts(store)
    store.downgrade("0001")
    assert counts(store) == before
    store.upgrade()
    assert counts(store) == before
    with store.session() as session:
        assert session.scalars(sa.select(Phase.scoring)).one() == (
            make_result().config.scoring_settings())
    with pytest.raises(sa.exc.IntegrityError), store.write() as session:
        session.add(Submission(phase_id=999, team_id=999, source="local", source_id="x"))


def test_settings_compare_as_stored(store: Store, tmp_path: Path) -> None:
    """A tuple in the config is a list once stored as JSON: the same settings still match."""
    result = make_result(probe_type="mlp", probe_params={"hidden_layers": (8, 4)})
    assert record(store, result, tmp_path / "run1")[1]
    assert record(store, result, tmp_path / "run2")[1]
    with pytest.raises(PhaseSettingsMismatch, match=r"probe_params \(phase: \{'hidden_layers': "
                                                    r"\[8, 4\]\}, this run: \{'hidden_layers': "
                                                    r"\[8\]\}\)"):
        record(store, make_result(probe_type="mlp", probe_params={"hidden_layers": (8,)}),
               tmp_path / "run3")
