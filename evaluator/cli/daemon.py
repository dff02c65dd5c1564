"""`probeboard run`, `probeboard check-config` and `probeboard status`: the daemon and a
look at it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DEFAULT_SETTINGS = Path("probeboard.yaml")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser("run", parents=[common],
                              help="the challenge daemon: poll, evaluate, publish")
    add_settings(run)
    run.add_argument("--once", action="store_true",
                     help="one pass (take in, evaluate everything, publish), then exit")
    run.set_defaults(handler=run_daemon)

    check = commands.add_parser("check-config", parents=[common],
                                help="validate the settings and try every connection")
    add_settings(check)
    check.set_defaults(handler=run_check_config)

    status = commands.add_parser("status", parents=[common],
                                 help="queue, running, failed, last poll and publish")
    add_settings(status)
    status.set_defaults(handler=run_status)


def add_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", type=Path, default=DEFAULT_SETTINGS,
                        help="the daemon's YAML settings (default: ./probeboard.yaml)")


def run_daemon(args: argparse.Namespace) -> int:
    from evaluator.daemon.service import Daemon
    from evaluator.daemon.settings import load_settings

    daemon = Daemon(load_settings(args.settings))
    if not args.once:
        daemon.run_forever()
        return 0
    try:
        counts = daemon.run_once()
    finally:
        daemon.close()
    print(", ".join(f"{key}: {value}" for key, value in counts.items()))
    return 0


def run_check_config(args: argparse.Namespace) -> int:
    from evaluator.operator.checks import check_settings

    failed = 0
    for ok, line in check_settings(args.settings):
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
        failed += not ok
    return 1 if failed else 0


def run_status(args: argparse.Namespace) -> int:
    from evaluator.daemon.settings import load_settings
    from evaluator.operator.status import daemon_status

    settings = load_settings(args.settings)
    print(json.dumps(daemon_status(settings), indent=2, default=str))
    return 0
