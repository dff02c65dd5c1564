"""`probeboard demo-data` and `probeboard demo`: a generated challenge to play with."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evaluator.cli.options import add_threads, load_config, print_warnings, score_with_progress


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
    from evaluator.demo import existing_demo, make_demo
    from evaluator.run_files import format_table

    labels = args.dir / "labels"
    if labels.is_dir() and any(labels.iterdir()):
        demo = existing_demo(args.dir)
        print(f"using the demo challenge in {args.dir}")
    else:
        print(f"generating the demo challenge in {args.dir} ...", flush=True)
        demo = make_demo(args.dir, small=args.small)
    config = load_config(args.config)
    summary = []
    for name, path in demo.submissions.items():
        print(f"\n== {name} ({path.name})", flush=True)
        result = score_with_progress(demo.labels, path, config, args.threads)
        print_warnings(result)
        print(format_table(result))
        summary.append((name, result.mean_quality, result.seconds))
    print("\nsubmission        mean Q   seconds")
    for name, mean_q, seconds in summary:
        print(f"{name:<16} {mean_q:>7.3f} {seconds:>9.1f}")
    return 0
