"""The local-folder publisher: a phase's boards written into one folder.

leaderboard.json, README.md (the table between the probeboard markers; text around them
that the organiser wrote is kept), leaderboard.html and the PNG/SVG pictures. Every file
is replaced atomically, so a web server reading the folder never serves half a file.
"""

from __future__ import annotations

from pathlib import Path

from evaluator.files import write_atomic
from leaderboard.board import Board
from leaderboard.render.board_json import board_json
from leaderboard.render.html import board_html
from leaderboard.render.markdown import README_END, README_START, update_readme
from leaderboard.render.pictures import board_pictures


def write_board_files(board: Board, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "leaderboard.json", folder / "leaderboard.html", folder / "README.md"]
    write_atomic(written[0], board_json(board).encode())
    write_atomic(written[1], board_html(board).encode())
    readme = written[2]
    text = (readme.read_text(encoding="utf-8") if readme.exists()
            else f"# Leaderboard: {board.phase}\n\n{README_START}\n{README_END}\n")
    write_atomic(readme, update_readme(text, [board]).encode())
    return [*written, *board_pictures(board, folder)]
