"""Standalone runs in the scoring database: update_leaderboard and `probeboard leaderboard`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.builders import TaskSpec, probeboard, write_challenge, write_unrelated_submission

SPECS = [TaskSpec("biomass", 50), TaskSpec("crops", 60, classification=True)]


def test_runs_are_recorded_ranked_and_published(tmp_path: Path) -> None:
    labels, informative = write_challenge(tmp_path, SPECS, dim=8, seed=1)
    # The same ids with embeddings that explain nothing: a weaker method.
    unrelated = write_unrelated_submission(informative, tmp_path / "unrelated.csv")
    config = tmp_path / "config.yaml"
    config.write_text("k_folds: 3\nprobe_type: ridge\nupdate_leaderboard: true\n")
    out = tmp_path / "out"
    # "second" runs twice, its good run first: it must count with that best run, not its
    # latest, and so rank above "first", whose only run explains nothing.
    runs = (("second", informative), ("first", unrelated), ("second", unrelated))
    for method, path in runs:
        done = probeboard("evaluate", "--labels", labels, "--submission", path, "--output", out,
                          "--config", config, "--method", method, "--phase", "dev")
        assert done.returncode == 0, done.stderr
    (second_best, _) = sorted((out / "dev").glob("second_*"))
    folder = out / "leaderboards" / "dev"
    board = json.loads((folder / "leaderboard.json").read_text())
    assert board["schema"] == "probeboard.leaderboard/1"
    assert [entry["team"] for entry in board["entries"]] == ["second", "first"]
    assert [entry["rank"] for entry in board["entries"]] == [1, 2]
    assert board["entries"][0]["mean_q"] > board["entries"][1]["mean_q"]
    assert len(board["history"]) == 3  # a snapshot per recorded run
    latest_csv = sorted(folder.glob("leaderboard_*.csv"))[-1]
    rows = list(csv.DictReader(latest_csv.open()))
    assert [(row["experiment"], row["aggregated_rank"]) for row in rows] == [
        (second_best.name, "1"), (sorted((out / "dev").glob("first_*"))[0].name, "2")]
    assert (folder / "README.md").read_text().count("| Rank | Team | Mean Q |") == 1
    assert "<table" in (folder / "leaderboard.html").read_text()
    assert {p.name for p in folder.glob("dev-*")} == {
        "dev-heatmap.png", "dev-heatmap.svg", "dev-rank-evolution.png", "dev-rank-evolution.svg"}

    table = probeboard("leaderboard", "--output", out, "--phase", "dev")
    assert table.returncode == 0, table.stderr
    assert "first" in table.stdout and "second" in table.stdout
    markdown = probeboard("leaderboard", "--output", out, "--format", "markdown")
    assert "| Rank | Team | Mean Q |" in markdown.stdout
    page = tmp_path / "board.html"
    html = probeboard("leaderboard", "--output", out, "--format", "html", "--out", page)
    assert html.returncode == 0 and page.read_text().startswith("<!DOCTYPE html>")


def test_leaderboard_without_runs_says_what_to_do(tmp_path: Path) -> None:
    done = probeboard("leaderboard", "--output", tmp_path / "results")
    assert done.returncode == 2
    assert "run `probeboard evaluate` first" in done.stderr
    assert not (tmp_path / "results").exists()  # reading created nothing
    database = f"sqlite:///{tmp_path / 'empty.db'}"
    done = probeboard("leaderboard", "--database", database, "--phase", "final")
    assert done.returncode == 2
    assert "no recorded runs in phase 'final'" in done.stderr
