"""The `probeboard` command, run as a real child process."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.builders import TaskSpec, child_env, make_result, probeboard, write_challenge

SPECS = [TaskSpec("biomass", 60, dataset="bio"), TaskSpec("biomass_std", 60, dataset="bio"),
         TaskSpec("crops", 70, classification=True)]


def test_evaluate_writes_the_reference_run_folder(tmp_path: Path) -> None:
    labels, submission = write_challenge(tmp_path, SPECS, dim=12)
    config = tmp_path / "config.yaml"
    config.write_text("k_folds: 3\nepochs: 2\noutput_fold_results: true\n"
                      "update_leaderboard: true\nenable_plots: true\n")
    out = tmp_path / "out"
    done = probeboard("evaluate", "--annotation_path", labels, "--submission_file", submission,
                      "--output_dir", out, "--config", config, "--method_name", "enc",
                      "--phase", "dev", "--threads", "1")
    assert done.returncode == 0, done.stderr
    assert "biomass_std" in done.stdout and "crops" in done.stdout
    (run_dir,) = (out / "dev").iterdir()
    assert run_dir.name.startswith("enc_")
    summary = json.loads((run_dir / "results_summary.json").read_text())
    assert sorted(summary["task_q_scores"]) == ["biomass", "biomass_std", "crops"]
    assert summary["config"]["k_folds"] == 3
    task = json.loads((run_dir / "crops" / "crops_result.json").read_text())
    assert len(task["q_t"]) == 3
    assert (run_dir / "crops" / "crops_confusion.png").stat().st_size > 1000
    (board,) = (out / "leaderboards" / "dev").glob("leaderboard_*.csv")
    assert board.read_text().startswith("experiment,mean_score,weighted_score,aggregated_rank")


def test_friendly_aliases_and_default_method_name(tmp_path: Path) -> None:
    labels, submission = write_challenge(tmp_path, SPECS[:1], dim=6)
    config = tmp_path / "c.yaml"
    config.write_text("k_folds: 2\nepochs: 1\n")
    done = probeboard("evaluate", "--labels", labels, "--submission", submission,
                      "--output", tmp_path / "o", "--config", config)
    assert done.returncode == 0, done.stderr
    assert [p.name.split("_")[0] for p in (tmp_path / "o" / "all").iterdir()] == ["submission"]


def test_errors_exit_2_with_a_message_that_names_the_problem(tmp_path: Path) -> None:
    labels, submission = write_challenge(tmp_path, SPECS[:1], dim=6)
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("k_folds: 40\nepoch: 3\n")
    done = probeboard("evaluate", "--labels", labels, "--submission", submission,
                      "--config", bad_config, "--output", tmp_path / "o")
    assert done.returncode == 2
    assert "unknown config key(s) epoch" in done.stderr
    broken = tmp_path / "broken.csv"
    broken.write_text("name,0,1\na,1,2\nb,3,4\n")
    done = probeboard("evaluate", "--labels", labels, "--submission", broken,
                      "--output", tmp_path / "o")
    assert done.returncode == 2
    assert "id" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.json"))


def test_check_submission(tmp_path: Path) -> None:
    _, submission = write_challenge(tmp_path, SPECS[:1], dim=6)
    done = probeboard("check-submission", submission, "--dim", "6")
    assert done.returncode == 0, done.stderr
    ids = tmp_path / "ids.txt"
    ids.write_text("not-in-the-file\n")
    done = probeboard("check-submission", submission, "--ids", ids)
    assert done.returncode == 2
    assert "missing" in done.stderr
    done = probeboard("check-submission", submission, "--dim", "4")
    assert done.returncode == 2


def test_demo_data_small(tmp_path: Path) -> None:
    done = probeboard("demo-data", tmp_path / "d", "--small", "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "d" / "labels").glob("*.csv"))) >= 9
    assert len(list((tmp_path / "d" / "submissions").glob("*.csv"))) == 5
    again = probeboard("demo-data", tmp_path / "d", "--small")
    assert again.returncode != 0 and "Traceback" not in again.stderr


def ranked(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.strip()[:1].isdigit()]


def test_demo_is_a_daemon_pass_over_a_local_challenge(tmp_path: Path) -> None:
    done = probeboard("demo", "--small", "--dir", "d", "--threads", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "new: 5, evaluated: 5" in done.stdout
    assert (tmp_path / "results" / "probeboard.db").is_file()
    assert (tmp_path / "results" / "leaderboards" / "demo" / "leaderboard.json").is_file()
    standings = done.stdout.split("standings:", 1)[1]
    assert ranked(standings)[:3] == ["strong", "medium", "weak"]
    board = probeboard("leaderboard", "--challenge", "demo", "--output", tmp_path / "results")
    assert board.returncode == 0, board.stderr
    assert ranked(board.stdout) == ranked(standings)
    rows = {line.split()[1]: line for line in board.stdout.splitlines()
            if line.strip()[:1].isdigit()}
    for name in ("baseline_mean", "baseline_random"):
        assert f"{name} *" in rows[name]  # ranked, marked non-competing
    assert "strong *" not in board.stdout and "non-competing" in board.stdout

    # The demo's settings drive the real daemon: a second pass takes in only what is new.
    again = probeboard("demo", "--dir", "d", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "new: 0, evaluated: 0" in again.stdout
    inbox = tmp_path / "d" / "inbox" / "demo"
    shutil.copyfile(inbox / "strong.csv", inbox / "copycat.csv")
    run = probeboard("run", "--once", "--settings", tmp_path / "d" / "probeboard.yaml")
    assert run.returncode == 0, run.stderr
    assert "new: 1, evaluated: 1" in run.stdout
    board = probeboard("leaderboard", "--challenge", "demo", "--output", tmp_path / "results")
    assert "copycat" in ranked(board.stdout)


def evaluate_verbosely(tmp_path: Path, flag: str) -> str:
    """stderr of `probeboard evaluate ... FLAG` (the flag after the command) on a fresh
    database (its migrations run), with stderr a pipe, not a terminal."""
    labels, submission = write_challenge(tmp_path / flag, SPECS, dim=6)
    config = tmp_path / flag / "c.yaml"
    config.write_text("k_folds: 2\nepochs: 1\n")
    done = probeboard("evaluate", "--labels", labels, "--submission", submission,
                      "--output", tmp_path / flag / "out", "--config", config, flag)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_v_keeps_alembic_quiet_and_vv_shows_it(tmp_path: Path) -> None:
    # Log lines read "<time> <LEVEL> <logger>: <message>"; Alembic's loggers are alembic.*
    quiet = evaluate_verbosely(tmp_path, "-v")
    assert " INFO evaluator." in quiet and " alembic." not in quiet and "INFO alembic" not in quiet
    assert "INFO alembic.runtime.migration: Running upgrade" in evaluate_verbosely(tmp_path, "-vv")


def test_v_logs_one_progress_line_a_task(tmp_path: Path) -> None:
    stderr = evaluate_verbosely(tmp_path, "-v")
    progress = [line for line in stderr.splitlines() if " scored: " in line]
    assert len(progress) == 3, stderr
    for i, (line, task) in enumerate(zip(progress, ["biomass", "biomass_std", "crops"],
                                         strict=True), start=1):
        assert f"INFO evaluator.cli.options: task {i}/3 {task} scored: " in line
        assert " s elapsed, about " in line and line.endswith(" s left")
    assert progress[-1].endswith("about 0.0 s left")


def test_leaderboard_into_head_ends_quietly(tmp_path: Path) -> None:
    """`probeboard leaderboard | head -1`: head leaves after one line; no traceback, exit 0."""
    from evaluator.db.evaluations import record_local_run
    from evaluator.db.store import open_store

    store = open_store(None, path=tmp_path / "probeboard.db")
    store.upgrade()
    result = make_result()
    for phase in range(6):
        for method in range(50):
            record_local_run(store, result, phase=f"phase{phase}", method_name=f"method{method}",
                             run_dir=tmp_path / f"run{method}")
    store.close()
    read_end, write_end = os.pipe()
    # A one-page pipe: the board (~20 kB) cannot fit, so head leaves while python writes.
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    board = subprocess.Popen(
        [sys.executable, "-m", "evaluator", "leaderboard", "--output", str(tmp_path)],
        stdout=write_end, stderr=subprocess.PIPE, env=child_env(), text=True,
    )
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.PIPE, text=True)
    os.close(read_end)
    os.close(write_end)
    first, _ = head.communicate(timeout=120)
    stderr = board.stderr.read() if board.stderr else ""
    assert board.wait(timeout=120) == 0, stderr
    assert stderr == ""
    assert first.startswith("Standalone benchmark runs / phase0")


def test_check_submission_makes_a_short_file_impossible_to_miss(tmp_path: Path) -> None:
    _, submission = write_challenge(tmp_path, SPECS[:1], dim=32)
    done = probeboard("check-submission", submission, "--dim", "1024")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "OK" not in lines[-1] and "WARNING" in lines[-1]
    assert any(line.startswith("WARNING: the submission has 32 embedding columns, fewer than "
                               "the 1024") and "are scored as zeros" in line for line in lines)
    assert "were filled" not in done.stdout and "flag:" not in done.stdout
