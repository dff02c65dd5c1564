"""The local-folder publisher: a phase's boards written into one folder.

leaderboard.json, README.md (the table between the probeboard markers; text around them
that the organiser wrote is kept), leaderboard.html and the PNG/SVG pictures. Every file
is replaced atomically, so a web server reading the folder never serves half a file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from evaluator.support.jsonio import write_atomic
from leaderboard.board import Board
from leaderboard.render.board_json import board_json
from leaderboard.render.html import board_html
from leaderboard.render.markdown import README_END, README_START, update_readme
from leaderboard.render.pictures import board_pictures


def board_files(board: Board) -> dict[str, bytes]:
    """The phase's published files by name (the README aside: it is merged, not replaced)."""
    files = {"leaderboard.json": board_json(board).encode(),
             "leaderboard.html": board_html(board).encode()}
    with tempfile.TemporaryDirectory() as folder:
        for path in board_pictures(board, Path(folder)):
            files[path.name] = path.read_bytes()
    return files


def readme_with(boards: list[Board], text: str | None, title: str) -> str:
    """`text` (an existing README) with the boards' tables between the markers."""
    if text is None:
        text = f"# {title}\n\n{README_START}\n{README_END}\n"
    return update_readme(text, boards)


def write_board_files(board: Board, folder: Path,
                      files: dict[str, bytes] | None = None) -> list[Path]:
    """Write the board's files (`files`: board_files(board), when already rendered)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in (files if files is not None else board_files(board)).items():
        write_atomic(folder / name, data)
        written.append(folder / name)
    readme = folder / "README.md"
    old = readme.read_text(encoding="utf-8") if readme.exists() else None
    write_atomic(readme, readme_with([board], old, f"Leaderboard: {board.phase}").encode())
    return [*written, readme]
