"""`probeboard leaderboard`: print or write the standings of recorded runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evaluator.cli.options import add_database, open_database


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    board = commands.add_parser(
        "leaderboard", parents=[common], help="print or write the standings of recorded runs"
    )
    board.add_argument("--challenge", default="standalone",
                       help="challenge slug (default: standalone, the evaluate runs)")
    board.add_argument("--phase", help="one phase (default: every phase)")
    board.add_argument("--format", choices=("table", "json", "markdown", "html"),
                       default="table")
    board.add_argument("--output_dir", "--output-dir", "--output", type=Path,
                       default=Path("results"),
                       help="evaluate's output folder, whose probeboard.db is read")
    board.add_argument("--out", type=Path, help="write to this file instead of stdout")
    add_database(board)
    board.set_defaults(handler=run_leaderboard)


def run_leaderboard(args: argparse.Namespace) -> int:
    from evaluator.db.challenges import challenge_phases
    from evaluator.support.errors import NotFound
    from leaderboard.phase_board import phase_board
    from leaderboard.render.board_json import board_json
    from leaderboard.render.html import board_html
    from leaderboard.render.markdown import readme_table
    from leaderboard.render.text import board_text

    default = args.output_dir / "probeboard.db"
    if args.database is None and not default.exists():  # reading must not create one
        raise NotFound(f"no scoring database at {default}; run `probeboard evaluate` "
                       "first (or pass --output_dir / --database)")
    store = open_database(args)
    with store.session() as session:
        phases = [phase for phase in challenge_phases(session, args.challenge)
                  if args.phase in (None, phase.slug)]
        if not phases:
            raise NotFound(
                f"no recorded runs{f' in phase {args.phase!r}' if args.phase else ''}; "
                "run `probeboard evaluate` first (or pass --output_dir / --database)"
            )
        boards = [phase_board(session, phase) for phase in phases]
    render = {"json": board_json, "markdown": readme_table, "html": board_html,
              "table": board_text}[args.format]
    text = "\n".join(render(board) for board in boards)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0
