"""The label folder reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluator.scoring.tasks import read_tasks
from evaluator.support.errors import LabelError

ROWS = "".join(f"id{i},{i % 7}.5\n" for i in range(12))


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)


def test_reads_tasks_sorted_with_kinds_and_skipped_rows(tmp_path: Path) -> None:
    write(tmp_path, "zeta__regression.csv", "id,label\n" + ROWS + "idx,\n")
    write(tmp_path, "alpha__cls.csv", "id,label\n" + "".join(f"c{i},{i % 2}\n" for i in range(12)))
    write(tmp_path, "mid__regr.csv", "label,id\n" + "".join(f"{i},m{i}\n" for i in range(12)))
    tasks = read_tasks(tmp_path)
    assert [t.name for t in tasks] == ["alpha", "mid", "zeta"]
    assert [t.kind for t in tasks] == ["classification", "regression", "regression"]
    assert tasks[2].skipped == 1 and len(tasks[2]) == 12
    assert tasks[1].ids[3] == "m3" and tasks[1].labels[3] == 3.0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", "id,label\n" + ROWS, "named <task>__<type>.csv"),
        ("t__svm.csv", "id,label\n" + ROWS, "type regr, cls"),
        ("t__regr.csv", "identifier,label\n" + ROWS, "missing column"),
        ("t__regr.csv", "id,label\n" + ROWS + "x1,abc\n", "line 14: label 'abc' is not a number"),
        ("t__regr.csv", "id,label\n" + ROWS + "x1,inf\n", "not finite"),
        ("t__regr.csv", "id,label\n" + ROWS + "id3,1\n", "line 14: id 'id3' appears twice"),
        ("t__cls.csv", "id,label\n" + ROWS, "must be 0 or 1"),
        ("t__regr.csv", "id,label\n" + "".join(f"i{i},2\n" for i in range(12)), "constant"),
        ("t__regr.csv", "id,label\na,1\nb,2\n", "at least 10"),
        ("t__regr.csv", "id,label\n" + ROWS + ",3\n", "empty id"),
    ],
)
def test_bad_label_files_name_file_line_and_fix(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    write(tmp_path, name, text)
    with pytest.raises(LabelError, match=message):
        read_tasks(tmp_path)


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="does not exist"):
        read_tasks(tmp_path / "nope")
    with pytest.raises(LabelError, match=r"no \.csv files"):
        read_tasks(tmp_path)
    (tmp_path / "t__regr.csv").write_bytes(b"id,label\n\xff\xfe,1\n")
    with pytest.raises(LabelError, match="not UTF-8"):
        read_tasks(tmp_path)


def test_same_task_twice_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "t__regr.csv", "id,label\n" + ROWS)
    write(tmp_path, "t__regression.csv", "id,label\n" + ROWS)
    with pytest.raises(LabelError, match="more than one label file"):
        read_tasks(tmp_path)
