"""The daemon on its embedded default: a local inbox in, boards in a folder out.

`probeboard run` runs as a real child process; evaluations run in their own children."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import probeboard
from tests.daemon_setup import HOSTILE_HEADER, board, make_challenge, statuses, write_settings


@pytest.fixture
def challenge(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_challenge(tmp_path)


def inbox(root: Path, phase: str, team: str, source: Path | str) -> Path:
    folder = root / "inbox" / phase
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{team}.csv"
    if isinstance(source, Path):
        shutil.copyfile(source, target)
    else:
        target.write_text(source)
    return target


def test_one_pass_scores_the_inbox_and_writes_the_board(
        tmp_path: Path, challenge: tuple[Path, Path, Path]) -> None:
    labels, informative, unrelated = challenge
    settings = write_settings(tmp_path, labels)
    inbox(tmp_path, "dev", "alpha", informative)
    inbox(tmp_path, "dev", "beta", unrelated)
    inbox(tmp_path, "dev", "mallory", HOSTILE_HEADER + "a,1\n")

    done = probeboard("run", "--once", "--settings", settings, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "new: 3, evaluated: 3, published: 1" in done.stdout
    states = statuses(tmp_path / "probeboard.db")
    assert sorted(states.values()) == ["failed", "finished", "finished"]
    shown = board(tmp_path / "boards" / "dev")
    assert [entry["team"] for entry in shown["entries"]] == ["alpha", "beta"]
    assert "tasks" not in shown  # a hidden-task phase names no task
    with sqlite3.connect(tmp_path / "probeboard.db") as connection:
        (stderr,) = connection.execute(
            "SELECT stderr FROM submission WHERE status = 'failed'").fetchone()
    assert "65,536" in stderr and "column" in stderr  # says what is wrong and the limit
    assert "Traceback" not in stderr and str(tmp_path) not in stderr

    # A second pass finds nothing new and publishes nothing (the board did not change).
    again = probeboard("run", "--once", "--settings", settings, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "new: 0, evaluated: 0, published: 0" in again.stdout
    assert statuses(tmp_path / "probeboard.db") == states

    # A team that uploads a better file: a new submission, and the board follows.
    inbox(tmp_path, "dev", "beta", informative)
    third = probeboard("run", "--once", "--settings", settings, cwd=tmp_path)
    assert "new: 1, evaluated: 1, published: 1" in third.stdout, third.stderr
    assert len(board(tmp_path / "boards" / "dev")["history"]) == 3

    status = probeboard("status", "--settings", settings, cwd=tmp_path)
    report = json.loads(status.stdout)
    assert report["phases"] == {"dev": {"finished": 3, "failed": 1}}
    assert report["daemon"]["last_publish"] and report["recently_failed"][0]["team"] == "mallory"


def test_an_evaluation_over_its_wall_time_fails_that_submission_only(
        tmp_path: Path, challenge: tuple[Path, Path, Path]) -> None:
    labels, informative, _ = challenge
    settings = write_settings(tmp_path, labels, workers={
        "concurrent": 1, "threads": 1, "wall_seconds": 0.5, "memory_mb": 6144})
    inbox(tmp_path, "dev", "slow", informative)
    done = probeboard("run", "--once", "--settings", settings, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert statuses(tmp_path / "probeboard.db") != {}
    with sqlite3.connect(tmp_path / "probeboard.db") as connection:
        status, stderr = connection.execute("SELECT status, stderr FROM submission").fetchone()
    assert status == "failed"
    assert "ran out of the time or memory the challenge allows" in stderr


def test_a_phase_whose_scoring_settings_changed_is_refused(
        tmp_path: Path, challenge: tuple[Path, Path, Path]) -> None:
    labels, informative, _ = challenge
    settings = write_settings(tmp_path, labels)
    inbox(tmp_path, "dev", "alpha", informative)
    assert probeboard("run", "--once", "--settings", settings, cwd=tmp_path).returncode == 0
    changed = write_settings(tmp_path, labels, scoring={"k_folds": 5, "probe_type": "ridge"})
    done = probeboard("run", "--once", "--settings", changed, cwd=tmp_path)
    assert done.returncode == 2
    assert "phase 'dev' was scored with other settings: k_folds (phase: 3, this run: 5)" \
        in done.stderr


def test_check_config_gives_one_verdict_per_line(
        tmp_path: Path, challenge: tuple[Path, Path, Path]) -> None:
    labels, _, _ = challenge
    settings = write_settings(tmp_path, labels, phases=[
        {"slug": "dev", "labels": str(labels)},
        {"slug": "final", "labels": str(tmp_path / "missing")},
    ])
    done = probeboard("check-config", "--settings", settings, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok   settings:")
    assert any(line.startswith("ok   database:") for line in lines)
    assert any(line.startswith("ok   phase dev labels: 2 tasks") for line in lines)
    assert any(line.startswith("FAIL phase final labels:") and "missing" in line
               for line in lines)


def test_a_typo_in_the_settings_names_the_key(tmp_path: Path,
                                             challenge: tuple[Path, Path, Path]) -> None:
    labels, _, _ = challenge
    settings = write_settings(tmp_path, labels, workrs={"concurrent": 1})
    done = probeboard("run", "--once", "--settings", settings, cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown key 'workrs' (did you mean 'workers'?)" in done.stderr


def start_daemon(settings: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "evaluator", "-v", "run", "--settings",
                             str(settings)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def running(database: Path) -> bool:
    try:
        return "running" in statuses(database).values()
    except sqlite3.OperationalError:  # not created or not migrated yet
        return False


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_stops_cleanly_and_nothing_is_lost(
        tmp_path: Path, challenge: tuple[Path, Path, Path], signals: int) -> None:
    """One signal: the running evaluation finishes (grace), then exit 0. Two: its child is
    killed at once and the submission is handed back, counted as no attempt."""
    labels, informative, _ = challenge
    settings = write_settings(tmp_path, labels)
    inbox(tmp_path, "dev", "alpha", informative)
    daemon = start_daemon(settings, tmp_path)
    database = tmp_path / "probeboard.db"
    try:
        wait_for(lambda: running(database))
        for _ in range(signals):
            daemon.send_signal(signal.SIGTERM)
            time.sleep(0.05)
        _, stderr = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, stderr
    assert "stopped" in stderr and "Traceback" not in stderr
    with sqlite3.connect(database) as connection:
        status, attempts, owner = connection.execute(
            "SELECT status, attempts, lease_owner FROM submission").fetchone()
    if signals == 1:
        assert status == "finished"
    else:
        assert (status, attempts, owner) == ("submitted", 0, None)
        # The next start evaluates it.
        done = probeboard("run", "--once", "--settings", settings, cwd=tmp_path)
        assert "evaluated: 1" in done.stdout, done.stderr
        assert statuses(database) == {next(iter(statuses(database))): "finished"}
    assert not [p for p in _children_of(daemon.pid)]  # no evaluation left behind


def _children_of(pid: int) -> list[int]:
    """Processes whose parent is pid (an orphaned evaluation child would show here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_sigkill_mid_evaluation_then_restart_evaluates_it_once(
        tmp_path: Path, challenge: tuple[Path, Path, Path]) -> None:
    labels, informative, _ = challenge
    settings = write_settings(tmp_path, labels, workers={
        "concurrent": 1, "threads": 1, "wall_seconds": 120, "memory_mb": 6144,
        "lease_seconds": 2, "max_attempts": 3})
    inbox(tmp_path, "dev", "alpha", informative)
    daemon = start_daemon(settings, tmp_path)
    database = tmp_path / "probeboard.db"
    try:
        wait_for(lambda: running(database))
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    time.sleep(2.5)  # the lease runs out
    done = probeboard("run", "--once", "--settings", settings, cwd=tmp_path)
    assert "expired: 1, new: 0, evaluated: 1" in done.stdout, done.stderr
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT status, attempts, interruptions FROM submission").fetchall()
        evaluations = connection.execute("SELECT count(*) FROM evaluation").fetchone()[0]
    assert rows == [("finished", 0, 1)] and evaluations == 1  # the kill is no attempt


def test_an_organiser_fault_hands_the_submission_back_and_ends_the_pass(
        tmp_path: Path, challenge: tuple[Path, Path, Path]) -> None:
    """Labels that vanish after start-up are the organiser's problem: the submission waits
    (not failed, no attempt counted) and the pass ends instead of re-claiming it forever."""
    from evaluator.daemon.service import Daemon
    from evaluator.daemon.settings import load_settings

    labels, informative, _ = challenge
    settings = write_settings(tmp_path, labels)
    inbox(tmp_path, "dev", "alpha", informative)
    daemon = Daemon(load_settings(settings), owner="test")
    try:
        shutil.rmtree(labels)
        counts = daemon.run_once()
    finally:
        daemon.close()
    assert counts["new"] == 1 and counts["evaluated"] == 0
    with sqlite3.connect(tmp_path / "probeboard.db") as connection:
        assert connection.execute("SELECT status, attempts, stderr FROM submission"
                                  ).fetchall() == [("submitted", 0, None)]
