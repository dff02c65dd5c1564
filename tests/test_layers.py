"""Layers point one way and no module imports itself round a cycle (tests/layers.py)."""

from __future__ import annotations

from pathlib import Path

from tests.layers import violations

ROOT = Path(__file__).resolve().parents[1]


def test_the_code_base_keeps_its_layers() -> None:
    assert violations(ROOT) == []


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


TREE = {
    "evaluator/__init__.py": "",
    "evaluator/scoring/__init__.py": "",
    "evaluator/scoring/protocol.py": "import numpy\n",
    "evaluator/db/__init__.py": "",
    "evaluator/db/models.py": "from evaluator.scoring import protocol\n",
    "evaluator/cli/__init__.py": "from leaderboard import ranking\n",
    "leaderboard/__init__.py": "",
    "leaderboard/ranking.py": "import numpy\n",
    "leaderboard/board.py": "from evaluator.db.models import x\nfrom .ranking import r\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert violations(write(tmp_path, TREE)) == []


def test_an_upward_import_is_caught_even_inside_a_function(tmp_path: Path) -> None:
    tree = {**TREE,
            "evaluator/scoring/protocol.py": "def f():\n    from leaderboard.ranking import r\n"}
    (problem,) = violations(write(tmp_path, tree))
    assert problem.startswith(
        "evaluator/scoring/protocol.py:2: evaluator.scoring.protocol (scoring core)")
    assert "imports leaderboard.ranking (boards), a higher layer" in problem


def test_a_relative_upward_import_is_caught(tmp_path: Path) -> None:
    tree = {**TREE, "evaluator/db/models.py": "from ..cli import main\n"}
    (problem,) = violations(write(tmp_path, tree))
    assert "evaluator.db.models (data and clients) imports evaluator.cli (commands)" in problem


def test_a_cycle_within_one_layer_is_caught(tmp_path: Path) -> None:
    tree = {**TREE, "evaluator/runs/plots.py": "from evaluator.runs.folders import w\n",
            "evaluator/runs/folders.py": "def f():\n    from evaluator.runs import plots\n"}
    assert violations(write(tmp_path, tree)) == [
        "import cycle: evaluator.runs.folders -> evaluator.runs.plots -> evaluator.runs.folders"
    ]


def test_a_module_in_no_layer_s_folder_is_caught(tmp_path: Path) -> None:
    tree = {**TREE, "evaluator/helpers.py": "import numpy\n"}
    assert violations(write(tmp_path, tree)) == [
        "evaluator/helpers.py: evaluator.helpers is in no layer's folder; put it in one, or "
        "add its folder to tests/layers.py FOLDERS"]


def test_a_private_name_imported_from_another_module_is_caught(tmp_path: Path) -> None:
    tree = {**TREE, "leaderboard/board.py": "from leaderboard.ranking import _order\n"}
    assert violations(write(tmp_path, tree)) == [
        "leaderboard/board.py:1: leaderboard.board imports the private name _order of "
        "leaderboard.ranking"]
