"""The operator's commands: show, requeue, rescore, hide / unhide, baseline.

The database rules run on SQLite and PostgreSQL (`store`); the commands run through the
real CLI on a real SQLite file after real daemon passes, on the local inbox and against
the in-repo EvalAI server."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from evaluator.daemon.outbox.reporting import HIDDEN_STDERR
from evaluator.daemon.service import Daemon
from evaluator.daemon.settings import load_settings
from evaluator.db import operator_actions
from evaluator.db.challenges import (
    get_or_create_challenge,
    get_or_create_phase,
    get_or_create_team,
)
from evaluator.db.evaluations import fail, finish
from evaluator.db.models import (
    REQUEUE_FROM,
    TRANSITIONS,
    OperatorAction,
    Submission,
    SubmissionStatus,
    requeue,
    transition,
)
from evaluator.db.store import Store
from evaluator.db.submissions import claim_next, intake_submission
from evaluator.support.errors import IllegalTransition, NotFound, OperatorRefused
from leaderboard.phase_board import phase_standings
from tests.builders import make_result, make_task, probeboard
from tests.daemon_setup import (
    HOSTILE_HEADER,
    board,
    make_challenge,
    statuses,
    write_evalai_settings,
    write_settings,
)
from tests.databases import seed_phase
from tests.servers.evalai import EvalAIServer, World

S = SubmissionStatus
LEASE = timedelta(minutes=5)


# ---- the rules, on both database backends -----------------------------------------------


@pytest.mark.parametrize("old", list(SubmissionStatus))
def test_an_operator_requeues_only_a_final_outcome_or_a_held_one(old: SubmissionStatus) -> None:
    assert all(S.SUBMITTED in TRANSITIONS[status] for status in REQUEUE_FROM)
    submission = Submission(id=7, status=old, attempts=3, interruptions=4,
                            lease_owner="worker-1")
    if old in (S.FAILED, S.FINISHED, S.HELD):
        requeue(submission)
        assert (submission.status, submission.attempts, submission.interruptions,
                submission.lease_owner, submission.finished_at) == (S.SUBMITTED, 0, 0, None,
                                                                    None)
        return
    expected = {S.SUBMITTED: "already waiting", S.RUNNING: "being evaluated now",
                S.CANCELLED: "final"}[old]
    with pytest.raises(IllegalTransition, match=f"submission 7: cannot go from {old} to "
                                                f"submitted: .*{expected}"):
        requeue(submission)
    assert (submission.status, submission.attempts) == (old, 3)


def seeded(store: Store, *wanted: SubmissionStatus) -> list[int]:
    """One public submission per status, each of its own team (finished ones scored), in
    that order."""
    ids = []
    for i, status in enumerate(wanted):
        with store.write() as session:
            phase, _ = seed_phase(session)
            team = get_or_create_team(session, phase.challenge, source="evalai",
                                      source_id=str(i), name=f"team {i}")
            submission, _ = intake_submission(session, phase=phase, team=team, is_public=True,
                                              source="evalai", source_id=str(100 + i))
            ids.append(submission.id)
        if status is S.SUBMITTED:
            continue
        if status is S.CANCELLED:
            with store.write() as session:
                transition(session.get(Submission, ids[-1]), S.CANCELLED)
            continue
        claim = claim_next(store, "worker", LEASE)
        assert claim is not None and claim.id == ids[-1]
        if status is S.FINISHED:
            assert finish(store, claim.id, "worker", make_result(), stdout="ok")
        elif status is S.FAILED:
            assert fail(store, claim.id, "worker", stderr="bad file")
    return ids


def audit(store: Store) -> list[tuple[str, str, str, int | None, dict[str, Any] | None]]:
    with store.session() as session:
        return [(row.actor, row.action, row.reason, row.submission_id, row.details)
                for row in session.scalars(sa.select(OperatorAction).order_by(OperatorAction.id))]


def status_of(store: Store, ids: list[int]) -> list[SubmissionStatus]:
    with store.session() as session:
        return [session.get(Submission, i).status for i in ids]  # type: ignore[union-attr]


def test_rescore_requeues_every_finished_and_failed_submission_at_once(store: Store) -> None:
    ids = seeded(store, S.FINISHED, S.FAILED, S.SUBMITTED, S.CANCELLED)
    with store.write() as session:
        phase, _ = seed_phase(session)
        operator_actions.rescore(session, phase, actor="alice", reason="labels fixed")
    assert status_of(store, ids) == [S.SUBMITTED, S.SUBMITTED, S.SUBMITTED, S.CANCELLED]
    assert audit(store) == [("alice", "rescore", "labels fixed", None,
                             {"requeued": ids[:2]})]
    with store.session() as session:
        touched = {i: [row.action for row in operator_actions.about(
            session, session.get(Submission, i))] for i in ids}  # type: ignore[arg-type]
    assert touched == {ids[0]: ["rescore"], ids[1]: ["rescore"], ids[2]: [], ids[3]: []}


def test_a_running_submission_holds_a_rescore_back_and_nothing_changes(store: Store) -> None:
    ids = seeded(store, S.FINISHED, S.RUNNING)
    with pytest.raises(OperatorRefused, match=rf"submissions {ids[1]} are being evaluated "
                                              r"now .* run the rescore again once"), \
            store.write() as session:
        phase, _ = seed_phase(session)
        operator_actions.rescore(session, phase, actor="alice", reason="labels fixed")
    assert status_of(store, ids) == [S.FINISHED, S.RUNNING]
    assert audit(store) == []


def test_a_phase_with_nothing_final_has_nothing_to_rescore(store: Store) -> None:
    seeded(store, S.SUBMITTED)
    with pytest.raises(OperatorRefused, match="no finished or failed submission"), \
            store.write() as session:
        phase, _ = seed_phase(session)
        operator_actions.rescore(session, phase, actor="alice", reason="labels fixed")
    assert audit(store) == []


def test_a_submission_is_found_by_id_or_evalai_pk_within_its_challenge(store: Store) -> None:
    (first,) = seeded(store, S.FINISHED)
    with store.write() as session:
        other = get_or_create_challenge(session, "other-challenge")
        phase = get_or_create_phase(session, other, "dev", scoring={"k_folds": 3, "seed": 1},
                                    tasks=["t"])
        team = get_or_create_team(session, other, source="local", source_id="x", name="x")
        stranger, _ = intake_submission(session, phase=phase, team=team, source="local",
                                        source_id="dev/x/1")
        stranger_id = stranger.id
    with store.session() as session:
        assert operator_actions.find_submission(session, "embed-2026", str(first)).id == first
        assert operator_actions.find_submission(session, "embed-2026", "evalai:100").id == first
        cases = {"999": "no submission 999", "evalai:5": "no submission with EvalAI pk 5",
                 "team-x": "give its id", str(stranger_id): "belongs to challenge "
                                                            "'other-challenge'"}
        for reference, message in cases.items():
            with pytest.raises(NotFound, match=message):
                operator_actions.find_submission(session, "embed-2026", reference)


def test_hide_and_baseline_record_who_and_why_and_refuse_a_repeat(store: Store) -> None:
    (first,) = seeded(store, S.FINISHED)
    with store.write() as session:
        submission = session.get(Submission, first)
        assert submission is not None
        operator_actions.set_hidden(session, submission, True, actor="bob", reason="copied")
        operator_actions.set_baseline(session, submission, True, actor="bob", reason="ours")

    def again(change: Any, *args: object, reason: str = "again") -> None:
        with store.write() as session:
            change(session, session.get(Submission, first), *args, actor="bob", reason=reason)

    with pytest.raises(OperatorRefused, match="already hidden; `probeboard unhide"):
        again(operator_actions.set_hidden, True)
    with pytest.raises(OperatorRefused, match="already a baseline"):
        again(operator_actions.set_baseline, True)
    with pytest.raises(OperatorRefused, match="give a reason"):
        again(operator_actions.set_hidden, False, reason=" ")
    assert audit(store) == [("bob", "hide", "copied", first, None),
                            ("bob", "baseline", "ours", first, None)]


def test_a_requeued_submission_keeps_its_place_until_its_new_evaluation(store: Store) -> None:
    first, second = seeded(store, S.FINISHED, S.FINISHED)
    steady = [0.90, 0.91, 0.89, 0.90, 0.90]
    better = replace(make_result(), tasks=[make_task("biomass_mean", "regression", steady),
                                           make_task("clouds", "classification", steady)])

    def mean_quality() -> dict[int, float]:
        with store.session() as session:
            phase, _ = seed_phase(session)
            result = phase_standings(session, phase)
            return {e.submission_id: e.mean_quality for e in result.entries}

    old = mean_quality()
    assert set(old) == {first, second}
    with store.write() as session:
        operator_actions.requeue(session, session.get(Submission, first),  # type: ignore[arg-type]
                                 actor="alice", reason="re-run")
    assert mean_quality() == old  # waiting: still counted with its last scores
    claim = claim_next(store, "worker", LEASE)
    assert claim is not None and claim.id == first
    assert mean_quality() == old  # running: likewise
    assert finish(store, first, "worker", better, stdout="ok")
    assert mean_quality()[first] > old[first]  # the latest evaluation wins
    with store.write() as session:
        operator_actions.requeue(session, session.get(Submission, first),  # type: ignore[arg-type]
                                 actor="alice", reason="once more")
    claim_next(store, "worker", LEASE)
    assert fail(store, first, "worker", stderr="now broken")
    assert set(mean_quality()) == {second}  # a failed re-run drops out


# ---- the commands on the local inbox, through the CLI -----------------------------------


def one_pass(settings: Path) -> dict[str, int]:
    """A real daemon pass (in this process: the commands run as children)."""
    daemon = Daemon(load_settings(settings), owner="test-daemon")
    try:
        return daemon.run_once()
    finally:
        daemon.close()


def operator(root: Path, settings: Path, *args: str | Path, ok: bool = True) -> str:
    """Run an operator command; its stdout (ok) or its error line (refused, exit 2)."""
    done = probeboard(*args, "--settings", settings, cwd=root)
    assert done.returncode == (0 if ok else 2), (done.stdout, done.stderr)
    return done.stdout if ok else done.stderr


def rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def teams(root: Path) -> dict[str, dict[str, Any]]:
    return {entry["team"]: entry for entry in board(root / "boards" / "dev")["entries"]}


def scramble(labels: Path, task: str = "biomass__regr.csv") -> None:
    """An organiser's label fix: the same ids and task, other values."""
    header, *lines = (labels / task).read_text().splitlines()
    ids = [line.split(",")[0] for line in lines]
    values = np.random.default_rng(5).permutation([line.split(",")[1] for line in lines])
    (labels / task).write_text("\n".join([header, *map(",".join, zip(ids, values,
                                                                     strict=True))]) + "\n")


@pytest.fixture
def scored(tmp_path: Path) -> tuple[Path, Path, Path]:
    """After one daemon pass over alpha (informative), beta (unrelated) and mallory (an
    unusable file): (root, settings, labels). Submission ids follow the team names."""
    labels, informative, unrelated = make_challenge(tmp_path)
    settings = write_settings(tmp_path, labels)
    inbox = tmp_path / "inbox" / "dev"
    inbox.mkdir(parents=True)
    shutil.copyfile(informative, inbox / "alpha.csv")
    shutil.copyfile(unrelated, inbox / "beta.csv")
    (inbox / "mallory.csv").write_text(HOSTILE_HEADER + "a,1\n")
    assert one_pass(settings)["evaluated"] == 3
    return tmp_path, settings, labels


def test_rescore_after_a_label_fix_moves_the_scores_and_the_board(
        scored: tuple[Path, Path, Path]) -> None:
    root, settings, labels = scored
    database = root / "probeboard.db"
    before = teams(root)
    before_states = statuses(database)

    # What a rescore cannot change: the phase's K and its task set.
    other_k = write_settings(root, labels, scoring={"k_folds": 5, "probe_type": "ridge"})
    refused = operator(root, other_k, "rescore", "dev", "--reason", "K", ok=False)
    assert "k_folds (phase: 3, this run: 5); a rescore scores with the phase's own settings" \
        in refused and "as a new phase" in refused
    settings = write_settings(root, labels)
    shutil.move(labels / "crops__cls.csv", root / "crops__cls.csv")
    refused = operator(root, settings, "rescore", "dev", "--reason", "tasks", ok=False)
    assert "tasks (phase: ['biomass', 'crops'], this run: ['biomass'])" in refused
    shutil.move(root / "crops__cls.csv", labels / "crops__cls.csv")
    assert statuses(database) == before_states
    assert rows(database, "SELECT count(*) FROM operator_action") == [(0,)]

    scramble(labels)
    said = operator(root, settings, "rescore", "dev", "--reason", "biomass labels fixed",
                    "--by", "alice")
    assert "phase dev: 3 submissions requeued" in said
    assert set(statuses(database).values()) == {"submitted"}
    assert rows(database, "SELECT actor, action, reason, phase_id, submission_id, details "
                          "FROM operator_action") == [
        ("alice", "rescore", "biomass labels fixed", 1, None, '{"requeued": [1, 2, 3]}')]
    assert teams(root) == before  # nothing published until the new scores are in

    assert one_pass(settings) == {"expired": 0, "new": 0, "evaluated": 3, "published": 1}
    after = teams(root)
    latest = dict(rows(database, "SELECT t.name, e.mean_quality FROM evaluation e "
                                 "JOIN submission s ON s.id = e.submission_id "
                                 "JOIN team t ON t.id = s.team_id "
                                 "ORDER BY e.id"))  # the newest evaluation of each team
    assert after["alpha"]["mean_q"] == pytest.approx(latest["alpha"])
    assert after["alpha"]["mean_q"] != pytest.approx(before["alpha"]["mean_q"])
    shown = json.loads(operator(root, settings, "show", "1", "--json"))
    assert [e["mean_q"] for e in shown["evaluations"]][-1] == pytest.approx(latest["alpha"])
    assert len(shown["evaluations"]) == 2 and shown["status"] == "finished"
    assert [(a["by"], a["action"], a["target"]) for a in shown["operator_actions"]] == [
        ("alice", "rescore", "phase dev")]


def test_requeue_after_raising_the_time_limit_scores_a_failed_submission(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels, informative, _ = make_challenge(tmp_path)
    tight = {"concurrent": 1, "threads": 1, "wall_seconds": 0.5, "memory_mb": 6144}
    settings = write_settings(tmp_path, labels, workers=tight)
    (tmp_path / "inbox" / "dev").mkdir(parents=True)
    shutil.copyfile(informative, tmp_path / "inbox" / "dev" / "alpha.csv")
    one_pass(settings)
    database = tmp_path / "probeboard.db"
    assert list(statuses(database).values()) == ["failed"]
    text = operator(tmp_path, settings, "show", "1")
    assert "status: failed" in text and "ran out of the time or memory" in text

    for reference, message in (("2", "no submission 2"), ("evalai:1", "EvalAI pk 1"),
                               ("alpha", "give its id")):
        refused = operator(tmp_path, settings, "requeue", reference, "--reason", "x", ok=False)
        assert refused.startswith("probeboard requeue: error: ") and message in refused
    settings = write_settings(tmp_path, labels)  # the organiser raises the limit
    monkeypatch.setenv("LOGNAME", "carol")  # the default --by is the login name
    said = operator(tmp_path, settings, "requeue", "1", "--reason", "wall time raised")
    assert "submission 1 (team alpha, phase dev) requeued (was failed)" in said
    again = operator(tmp_path, settings, "requeue", "1", "--reason", "twice", ok=False)
    assert "cannot go from submitted to submitted: it is already waiting" in again

    assert one_pass(settings) == {"expired": 0, "new": 0, "evaluated": 1, "published": 1}
    assert list(statuses(database).values()) == ["finished"]
    assert list(teams(tmp_path)) == ["alpha"]
    shown = json.loads(operator(tmp_path, settings, "show", "1", "--json"))
    assert shown["attempts"] == 0 and shown["stderr"] == "" and len(shown["evaluations"]) == 1
    assert [(a["by"], a["action"], a["reason"], a["details"])
            for a in shown["operator_actions"]] == [
        ("carol", "requeue", "wall time raised", {"from": "failed"})]


def test_hide_unhide_and_baseline_move_the_board(scored: tuple[Path, Path, Path]) -> None:
    root, settings, _ = scored
    assert list(teams(root)) == ["alpha", "beta"]

    said = operator(root, settings, "hide", "2", "--reason", "shared embeddings", "--by", "bob")
    assert "submission 2 (team beta, phase dev) hidden" in said and "EvalAI" not in said
    assert "already hidden" in operator(root, settings, "hide", "2", "--reason", "x", ok=False)
    assert one_pass(settings)["published"] == 1
    assert list(teams(root)) == ["alpha"]
    assert "hidden" in operator(root, settings, "show", "2").splitlines()[1]

    operator(root, settings, "unhide", "2", "--reason", "appeal upheld", "--by", "bob")
    operator(root, settings, "baseline", "1", "--reason", "organisers' reference", "--by", "bob")
    assert one_pass(settings)["published"] == 1
    shown = teams(root)
    assert list(shown) == ["alpha", "beta"]
    assert (shown["alpha"]["competing"], shown["beta"]["competing"]) == (False, True)

    operator(root, settings, "baseline", "1", "--off", "--reason", "mistake", "--by", "bob")
    one_pass(settings)
    assert teams(root)["alpha"]["competing"] is True

    status = json.loads(operator(root, settings, "status"))
    assert [(a["action"], a["target"], a["reason"]) for a in status["operator_actions"]] == [
        ("baseline-off", "submission 1", "mistake"),
        ("baseline", "submission 1", "organisers' reference"),
        ("unhide", "submission 2", "appeal upheld"),
        ("hide", "submission 2", "shared embeddings"),
    ]
    assert rows(root / "probeboard.db", "SELECT reason FROM standings_snapshot")[-4:] == [
        ("submission 2 hidden by the operator",), ("submission 2 shown again by the operator",),
        ("submission 1 marked as a baseline by the operator",),
        ("submission 1 no longer a baseline by the operator",)]


# ---- against the in-repo EvalAI server --------------------------------------------------


@pytest.fixture
def evalai_challenge(tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
                     monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, bytes, bytes]:
    """(settings, labels, informative file, unrelated file); the CLI's children and the
    in-process daemon both find the host's token in EVALAI_TOKEN."""
    monkeypatch.setenv("EVALAI_TOKEN", evalai_world.host.jwt)
    labels, informative, unrelated = make_challenge(tmp_path)
    settings = write_evalai_settings(tmp_path, labels, evalai_server.url, evalai_world)
    return settings, labels, informative.read_bytes(), unrelated.read_bytes()


def evalai_ranks(server: EvalAIServer, world: World) -> dict[str, Any]:
    return {e["submission__participant_team__team_name"]: e["result"][0]
            for e in server.leaderboard(world.phase_splits["dev"])}


def test_hide_cancels_at_evalai_and_the_other_ranks_are_re_put(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        evalai_challenge: tuple[Path, Path, bytes, bytes]) -> None:
    server, world = evalai_server, evalai_world
    settings, _, informative, unrelated = evalai_challenge
    one, two = world.participants
    first = server.submit(one, world.phases["dev"], informative)
    second = server.submit(two, world.phases["dev"], unrelated)
    one_pass(settings)
    assert evalai_ranks(server, world) == {"probeboard-team-1": 1, "probeboard-team-2": 2}

    said = operator(tmp_path, settings, "hide", f"evalai:{first.pk}", "--reason", "plagiarism")
    assert "republishes the boards and its state and the ranks on EvalAI" in said
    one_pass(settings)
    assert server.submission(first.pk).status == "cancelled"
    stderr = server.state.media[server.submission(first.pk).stderr_file or ""].decode()
    assert stderr == HIDDEN_STDERR and "plagiarism" not in stderr
    assert evalai_ranks(server, world) == {"probeboard-team-2": 1}  # re-PUT as first
    assert list(teams(tmp_path)) == ["probeboard-team-2"]

    operator(tmp_path, settings, "unhide", f"evalai:{first.pk}", "--reason", "cleared")
    one_pass(settings)
    assert server.submission(first.pk).status == "finished"
    assert evalai_ranks(server, world) == {"probeboard-team-1": 1, "probeboard-team-2": 2}

    operator(tmp_path, settings, "baseline", f"evalai:{second.pk}", "--reason", "reference")
    one_pass(settings)
    assert server.submission(second.pk).is_baseline is True
    assert teams(tmp_path)["probeboard-team-2"]["competing"] is False

    shown = json.loads(operator(tmp_path, settings, "show", f"evalai:{first.pk}", "--json"))
    assert shown["evalai_pk"] == first.pk and shown["status"] == "finished"
    assert [(r["action"], r["status"]) for r in shown["outbox"]
            if r["action"] != "rank"] == [("report", "done"), ("ack", "done"),
                                          ("report", "done"), ("report", "done")]
    assert [a["action"] for a in shown["operator_actions"]] == ["hide", "unhide"]


def test_a_requeued_failed_submission_is_reported_once_more(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        evalai_challenge: tuple[Path, Path, bytes, bytes]) -> None:
    server, world = evalai_server, evalai_world
    _, labels, informative, _ = evalai_challenge
    tight = write_evalai_settings(tmp_path, labels, server.url, world, workers={
        "concurrent": 1, "threads": 1, "wall_seconds": 0.5, "memory_mb": 6144})
    submission = server.submit(world.participants[0], world.phases["dev"], informative)
    one_pass(tight)
    assert server.submission(submission.pk).status == "failed"
    assert server.pending_messages() == []
    puts = [r for r in server.requests if r.method == "PUT"]

    settings = write_evalai_settings(tmp_path, labels, server.url, world)  # limit raised
    operator(tmp_path, settings, "requeue", f"evalai:{submission.pk}", "--reason", "limit")
    assert one_pass(settings)["evaluated"] == 1
    assert server.submission(submission.pk).status == "finished"
    assert evalai_ranks(server, world) == {"probeboard-team-1": 1}
    assert len([r for r in server.requests if r.method == "PUT"]) == len(puts) + 1


def test_rescore_re_puts_every_result_with_the_new_scores(
        tmp_path: Path, evalai_server: EvalAIServer, evalai_world: World,
        evalai_challenge: tuple[Path, Path, bytes, bytes]) -> None:
    server, world = evalai_server, evalai_world
    settings, labels, informative, unrelated = evalai_challenge
    one, two = world.participants
    submitted = [server.submit(one, world.phases["dev"], informative),
                 server.submit(two, world.phases["dev"], unrelated)]
    one_pass(settings)

    def mean_q_at_evalai() -> list[float]:
        shown = {e["submission__id"]: e["result"][2]
                 for e in server.leaderboard(world.phase_splits["dev"])}
        return [shown[s.pk] for s in submitted]

    before = mean_q_at_evalai()
    scramble(labels)
    operator(tmp_path, settings, "rescore", "dev", "--reason", "biomass labels fixed")
    assert one_pass(settings)["evaluated"] == 2
    assert [server.submission(s.pk).status for s in submitted] == ["finished", "finished"]
    ours = [json.loads(operator(tmp_path, settings, "show", f"evalai:{s.pk}", "--json"))
            ["evaluations"][-1]["mean_q"] for s in submitted]
    assert mean_q_at_evalai() == pytest.approx(ours, abs=1e-6)
    assert mean_q_at_evalai()[0] != pytest.approx(before[0], abs=1e-6)
    assert [e["mean_q"] for e in teams(tmp_path).values()] == pytest.approx(ours)
