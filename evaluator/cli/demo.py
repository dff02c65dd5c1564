"""`probeboard demo-data` and `probeboard demo`: a generated challenge to play with."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evaluator.cli.options import (
    add_database,
    add_threads,
    load_config,
    open_database,
    print_warnings,
    score_with_progress,
)

DEMO_PHASE = "demo"


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    demo_data = commands.add_parser("demo-data", parents=[common],
                                    help="generate a realistic demo challenge")
    demo_data.add_argument("out", type=Path)
    demo_data.add_argument("--small", action="store_true", help="small and fast (for tests)")
    demo_data.add_argument("--seed", type=int, default=0)
    demo_data.add_argument("--overwrite", action="store_true")
    demo_data.set_defaults(handler=run_demo_data)

    demo = commands.add_parser(
        "demo", parents=[common],
        help="generate the demo challenge (once) and score every demo submission",
    )
    demo.add_argument("--dir", type=Path, default=Path("demo"), help="default: ./demo")
    demo.add_argument("--small", action="store_true", help="small and fast")
    demo.add_argument("--config", type=Path, help="YAML config; default: challenge settings")
    demo.add_argument("--output_dir", "--output-dir", "--output", type=Path,
                      default=Path("results"),
                      help="where run folders, probeboard.db and the boards go "
                           "(default: results, which `probeboard leaderboard` reads)")
    demo.add_argument("--phase", default=DEMO_PHASE,
                      help=f"phase the runs are recorded in (default: {DEMO_PHASE})")
    add_database(demo)
    add_threads(demo)
    demo.set_defaults(handler=run_demo)


def run_demo_data(args: argparse.Namespace) -> int:
    from evaluator.demo import make_demo

    demo = make_demo(args.out, small=args.small, seed=args.seed, overwrite=args.overwrite)
    print(f"labels: {demo.labels}")
    for name, path in demo.submissions.items():
        print(f"submission {name}: {path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from evaluator.db.challenges import STANDALONE_CHALLENGE, find_phase
    from evaluator.demo import existing_demo, make_demo
    from evaluator.run_files import check_name, format_table, write_run
    from leaderboard.phase_board import phase_board
    from leaderboard.render.text import board_text
    from leaderboard.standalone import record_run, update_board

    check_name(args.phase, "--phase")
    labels = args.dir / "labels"
    if labels.is_dir() and any(labels.iterdir()):
        demo = existing_demo(args.dir)
        print(f"using the demo challenge in {args.dir}")
    else:
        print(f"generating the demo challenge in {args.dir} ...", flush=True)
        demo = make_demo(args.dir, small=args.small)
    config = load_config(args.config)
    store = open_database(args)  # before scoring: a bad --database fails in a second
    for name, path in demo.submissions.items():
        print(f"\n== {name} ({path.name})", flush=True)
        result = score_with_progress(demo.labels, path, config, args.threads)
        print_warnings(result)
        print(format_table(result))
        run_dir = write_run(result, output_dir=args.output_dir, phase=args.phase,
                            method_name=name)
        # The two baselines are ranked (they keep the task weights honest) but do not compete.
        record_run(store, result, run_dir=run_dir, phase=args.phase, method_name=name,
                   submission_file=path, is_baseline=name.startswith("baseline"))
        print(f"scored in {result.seconds:.1f} s; results: {run_dir}")
    folder = update_board(store, args.output_dir, args.phase)
    with store.session() as session:
        phase = find_phase(session, STANDALONE_CHALLENGE, args.phase)
        assert phase is not None  # update_board found it
        board = phase_board(session, phase)
    print(f"\nleaderboard files: {folder}")
    print(f"standings (again with `probeboard leaderboard --output_dir {args.output_dir}`):\n")
    print(board_text(board))
    return 0
