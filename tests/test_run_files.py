"""The standalone run folder: layout, reference keys, strict JSON, names, terminal table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluator.runs.folders import TABLE_LEGEND, format_table, write_run
from evaluator.scoring.config import EvaluationConfig
from evaluator.support import jsonio
from evaluator.support.errors import ConfigError, LabelError
from evaluator.support.jsonio import to_json_value, write_atomic
from tests.builders import N_TEST, NOW, E, K, make_result

STAMP = "20240309_140507"
REFERENCE_KEYS = [
    "experiment",
    "overall_q_score",
    "overall_acc_score",
    "task_q_scores",
    "task_acc_scores",
    "config",
]


def _reject_constant(name: str) -> None:
    raise AssertionError(f"non-standard JSON constant {name} written")


def read_strict(path: Path) -> Any:
    """Parse as strict JSON: NaN / Infinity make it fail."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)


def test_folder_layout_and_names(tmp_path: Path) -> None:
    result = make_result()
    run_dir = write_run(result, output_dir=tmp_path, phase="development",
                        method_name="my_encoder", now=NOW)
    assert run_dir == tmp_path / "development" / f"my_encoder_{STAMP}"
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*"))
    assert files == [
        "biomass_mean",
        "biomass_mean/biomass_mean_result.json",
        "clouds",
        "clouds/clouds_result.json",
        "results_summary.json",
    ]  # also: no temporary files left behind


def test_summary_has_the_reference_keys_first(tmp_path: Path) -> None:
    result = make_result()
    run_dir = write_run(result, output_dir=tmp_path, phase="final", method_name="m", now=NOW)
    summary = read_strict(run_dir / "results_summary.json")
    assert list(summary)[:6] == REFERENCE_KEYS
    assert summary["experiment"] == run_dir.name == f"m_{STAMP}"
    biomass, clouds = result.tasks
    assert summary["task_q_scores"] == pytest.approx(
        {"biomass_mean": biomass.quality, "clouds": clouds.quality})
    assert summary["task_acc_scores"] == pytest.approx(
        {"biomass_mean": biomass.mean, "clouds": clouds.mean})
    assert summary["overall_q_score"] == pytest.approx((biomass.quality + clouds.quality) / 2)
    assert summary["overall_acc_score"] == pytest.approx((biomass.mean + clouds.mean) / 2)
    assert summary["config"] == json.loads(json.dumps(result.config.to_dict()))
    assert summary["embedding_dim"] == 16
    assert summary["warnings"] == result.warnings
    assert summary["seconds"] == 1.25
    assert isinstance(summary["probeboard_version"], str)


def test_task_file_keys_without_fold_scores(tmp_path: Path) -> None:
    run_dir = write_run(make_result(), output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    record = read_strict(run_dir / "biomass_mean" / "biomass_mean_result.json")
    assert list(record)[:4] == ["q_stat", "mean_score", "std_dev", "hyperparameters"]
    assert "q_t" not in record
    assert record["failed_folds"] == 1
    assert record["samples"] == 10 * N_TEST
    assert record["kind"] == "regression"
    assert "selected_epoch" not in record
    assert record["metrics"] == pytest.approx({"mse": 0.012, "mae": 0.09})


def test_fold_scores_only_with_output_fold_results(tmp_path: Path) -> None:
    result = make_result(output_fold_results=True)
    run_dir = write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    record = read_strict(run_dir / "biomass_mean" / "biomass_mean_result.json")
    assert record["q_t"][:3] == pytest.approx([0.61, 0.58, 0.64])
    assert record["q_t"][3] is None  # the failed fold's NaN
    assert len(record["q_t"]) == K
    assert record["selected_epoch"] == [E - 1, E - 1, E - 1, -1, E - 1]


def test_nan_and_inf_are_written_as_null(tmp_path: Path) -> None:
    result = make_result()
    broken = result.tasks[1]
    broken.quality = math.nan
    broken.metrics["precision"] = np.float32("inf")
    run_dir = write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    for path in run_dir.rglob("*.json"):
        read_strict(path)  # raises on NaN / Infinity
    summary = read_strict(run_dir / "results_summary.json")
    assert summary["task_q_scores"]["clouds"] is None
    assert summary["overall_q_score"] is None  # a NaN task makes the run unrankable
    record = read_strict(run_dir / "clouds" / "clouds_result.json")
    assert record["q_stat"] is None
    assert record["metrics"]["roc_auc"] is None
    assert record["metrics"]["precision"] is None
    assert record["metrics"]["confusion_matrix"] == [[10, 2], [3, 20]]


def test_to_json_value_unwraps_numpy_and_rejects_unknown_types() -> None:
    value = {"a": np.int64(3), "b": np.array([1.5, np.nan]), "c": (np.bool_(True), None),
             np.int32(4): "numpy key"}
    assert to_json_value(value) == {"a": 3, "b": [1.5, None], "c": [True, None], 4: "numpy key"}
    with pytest.raises(TypeError, match="set"):
        to_json_value({"x": {1, 2}})


def test_same_second_runs_get_a_suffix_and_never_overwrite(tmp_path: Path) -> None:
    result = make_result()
    first = write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    (first / "marker").write_text("first run")
    second = write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    third = write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    assert [first.name, second.name, third.name] == [
        f"m_{STAMP}", f"m_{STAMP}_2", f"m_{STAMP}_3"]
    assert (first / "marker").read_text() == "first run"
    assert read_strict(third / "results_summary.json")["experiment"] == f"m_{STAMP}_3"


BAD_NAMES = ["", "a/b", "a\\b", "..", "x..y", ".hidden", "a\x00b", "a\nb", "tab\there",
             "x" * 101]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(("argument", "flag"),
                         [("method_name", "--method_name"), ("phase", "--phase")])
def test_unsafe_names_are_rejected_naming_the_flag(
    tmp_path: Path, name: str, argument: str, flag: str
) -> None:
    names = {"method_name": "ok", "phase": "ok", argument: name}
    with pytest.raises(ConfigError) as caught:
        write_run(make_result(), output_dir=tmp_path, now=NOW, **names)
    assert flag in str(caught.value)
    assert "e.g." in str(caught.value)  # says how to fix it
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize("name", ["my-encoder_v2.1", "Mon modèle", "x" * 100])
def test_ordinary_names_are_accepted(tmp_path: Path, name: str) -> None:
    run_dir = write_run(make_result(), output_dir=tmp_path, phase=name, method_name=name, now=NOW)
    assert run_dir.parent.name == name
    assert run_dir.name == f"{name}_{STAMP}"


def test_unsafe_task_name_is_a_label_error(tmp_path: Path) -> None:
    result = make_result()
    result.tasks[0].name = ".."
    with pytest.raises(LabelError, match="task"):
        write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)


def test_plots_are_not_drawn_unless_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evaluator.runs.plots

    def fail(*_args: object) -> list[Path]:
        raise AssertionError("save_plots called with enable_plots false")

    monkeypatch.setattr(evaluator.runs.plots, "save_plots", fail)
    run_dir = write_run(make_result(), output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    assert not list(run_dir.rglob("*.png"))


def test_atomic_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "results_summary.json"
    target.write_text('{"old": true}')

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(jsonio.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b'{"new": ')
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["results_summary.json"]


def test_format_table() -> None:
    result = make_result()
    table = format_table(result)
    lines = table.splitlines()
    header = lines[0]
    for word in ("task", "type", "samples", "Q", "mean", "std", "failed"):
        assert word in header
    biomass_row = next(line for line in lines if line.startswith("biomass_mean"))
    clouds_row = next(line for line in lines if line.startswith("clouds"))
    biomass, clouds = result.tasks
    assert "regression" in biomass_row and "classification" in clouds_row
    assert f"{biomass.quality:.3f}" in biomass_row
    assert f"{biomass.mean:.3f}" in biomass_row
    assert f"{biomass.std:.3f}" in biomass_row
    assert biomass_row.split()[2] == str(10 * N_TEST)
    assert biomass_row.endswith("1/5") and clouds_row.endswith("0/5")
    # Fixed width: each Q value ends under the header's Q.
    q_end = header.index(" Q ") + 2
    for row, task in ((biomass_row, biomass), (clouds_row, clouds)):
        text = f"{task.quality:.3f}"
        assert row.index(text) + len(text) == q_end
    last = lines[-len(TABLE_LEGEND) - 2]  # the mean row, above a blank line and the legend
    assert last.startswith("mean")
    assert f"{result.mean_quality:.3f}" in last
    assert len(result.tasks) == 2 and "2 tasks" in last


def test_format_table_explains_its_numbers() -> None:
    lines = format_table(make_result()).splitlines()
    assert lines[-len(TABLE_LEGEND):] == list(TABLE_LEGEND)
    legend = " ".join(TABLE_LEGEND)
    for words in ("quality score", "higher is better", "R² for regression", "F1 for classif",
                  "across folds", "out of K"):
        assert words in legend
    # The README's "Reading the results" says the same words.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert all(line in readme for line in TABLE_LEGEND)


def test_summary_seconds_cover_the_whole_scoring_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from evaluator.scoring import engine
    from tests.builders import TaskSpec, write_challenge

    labels, submission = write_challenge(tmp_path, [TaskSpec("biomass", 60)], dim=4)
    # Reading and training each take at least PAUSE: a clock that skips either shows.
    pause = 0.2
    read, evaluate = engine.read_submission, engine.evaluate

    def slow(function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            time.sleep(pause)
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(engine, "read_submission", slow(read))
    monkeypatch.setattr(engine, "evaluate", slow(evaluate))
    config = EvaluationConfig(k_folds=2, epochs=1)
    started = time.perf_counter()
    result = engine.score_submission(labels, submission, config, threads=1)
    around = time.perf_counter() - started
    run_dir = write_run(result, output_dir=tmp_path, phase="p", method_name="m", now=NOW)
    summary = read_strict(run_dir / "results_summary.json")
    assert list(summary)[:6] == REFERENCE_KEYS
    assert 2 * pause <= summary["seconds"] <= around
    assert summary["seconds"] > 0.5 * around  # the call is the clock's, not a fraction of it
    covers = summary["seconds_covers"]
    assert "reading" in covers and "checking" in covers and "training" in covers
