"""`probeboard demo-data` and `probeboard demo`: a generated challenge to play with.

`probeboard demo` is a complete local challenge: the demo data (generated once), a
settings file for the daemon with the demo submissions in its inbox, one daemon pass
(`probeboard run --once`), the boards written and the standings printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from evaluator.cli.options import add_threads, load_config

if TYPE_CHECKING:
    from evaluator.daemon.service import Daemon
    from evaluator.runs.demo import DemoChallenge

DEMO_CHALLENGE = "demo"
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
        help="a local challenge: generate the demo (once), one daemon pass over its "
             "submissions, boards and standings",
    )
    demo.add_argument("--dir", type=Path, default=Path("demo"),
                      help="demo data, inbox and settings (default: ./demo)")
    demo.add_argument("--small", action="store_true", help="small and fast")
    demo.add_argument("--config", type=Path, help="YAML config; default: challenge settings")
    demo.add_argument("--output_dir", "--output-dir", "--output", type=Path,
                      default=Path("results"),
                      help="where probeboard.db, the daemon's work folder and the boards go "
                           "(default: results)")
    add_threads(demo)
    demo.set_defaults(handler=run_demo)


def run_demo_data(args: argparse.Namespace) -> int:
    from evaluator.runs.demo import make_demo

    demo = make_demo(args.out, small=args.small, seed=args.seed, overwrite=args.overwrite)
    print(f"labels: {demo.labels}")
    for name, path in demo.submissions.items():
        print(f"submission {name}: {path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from evaluator.daemon.service import Daemon
    from evaluator.daemon.settings import load_settings
    from evaluator.runs.demo import existing_demo, make_demo

    labels = args.dir / "labels"
    if labels.is_dir() and any(labels.iterdir()):
        demo = existing_demo(args.dir)
        print(f"using the demo challenge in {args.dir}")
    else:
        print(f"generating the demo challenge in {args.dir} ...", flush=True)
        demo = make_demo(args.dir, small=args.small)
    settings_path = write_demo_settings(demo, args)
    settings = load_settings(settings_path)
    print(f"daemon pass over {settings.inbox / DEMO_PHASE} (settings: {settings_path}; "
          f"each submission is evaluated in its own process) ...", flush=True)
    daemon = Daemon(settings)
    try:
        counts = daemon.run_once()
        print(", ".join(f"{key}: {value}" for key, value in counts.items()))
        print_results(daemon, settings.publish_folder)
    finally:
        daemon.close()
    print(f"\nagain: probeboard run --once --settings {settings_path}  (add a CSV named after "
          f"its team to {settings.inbox / DEMO_PHASE} first); standings: probeboard "
          f"leaderboard --challenge {DEMO_CHALLENGE} --output {args.output_dir}")
    return 0


def write_demo_settings(demo: DemoChallenge, args: argparse.Namespace) -> Path:
    """The daemon's settings for the demo, and its inbox holding the demo submissions
    (hard links where the file system allows: the files are ~90 MB each)."""
    inbox = demo.root / "inbox"
    phase_inbox = inbox / DEMO_PHASE
    phase_inbox.mkdir(parents=True, exist_ok=True)
    for name, path in demo.submissions.items():
        _place(path, phase_inbox / f"{name}.csv")
    cores = len(os.sched_getaffinity(0))
    threads = max(1, min(args.threads or cores, cores))
    output = args.output_dir.resolve()
    settings = {
        "challenge": {"slug": DEMO_CHALLENGE, "title": "probeboard demo challenge"},
        "database": f"sqlite:///{output / 'probeboard.db'}",
        "scoring": load_config(args.config).to_dict(),
        # Revealed tasks: the demo's board shows every task.
        "phases": [{"slug": DEMO_PHASE, "labels": str(demo.labels.resolve()),
                    "hidden_tasks": False}],
        "inbox": str(inbox.resolve()),
        "publish": {"folder": str(output / "leaderboards")},
        "workers": {"concurrent": max(1, cores // threads), "threads": threads,
                    "wall_seconds": 1800, "memory_mb": 8192},
        "workdir": str(output / "daemon"),
    }
    path = demo.root / "probeboard.yaml"
    path.write_text("# Written by `probeboard demo`: the daemon's settings for the demo.\n"
                    + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def _place(source: Path, target: Path) -> None:
    if target.exists():
        if target.samefile(source):
            return
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # another file system: copy
        shutil.copyfile(source, target)


def print_results(daemon: Daemon, folder: Path | None) -> None:
    from evaluator.db.challenges import find_phase
    from leaderboard.phase_board import phase_board
    from leaderboard.render.text import board_text

    with daemon.store.session() as session:
        phase = find_phase(session, DEMO_CHALLENGE, DEMO_PHASE)
        assert phase is not None  # the daemon created it
        for submission in sorted(phase.submissions, key=lambda s: s.id):
            line = f"  {submission.team.name:<18} {submission.status}"
            if submission.stderr:
                line += f": {submission.stderr}"
            print(line)
        board = phase_board(session, phase)
    if folder is not None:
        print(f"\nleaderboard files: {folder / DEMO_PHASE}")
    print("\nstandings:\n")
    print(board_text(board))
