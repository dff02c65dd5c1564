"""The `probeboard` command: one module per group of commands, each command a few lines
that call the library. Errors print as one line naming the problem and the fix (exit 2),
never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from evaluator.cli import boards, daemon, demo, operator, scoring
from evaluator.support.errors import ProbeboardError

GROUPS = (scoring, boards, demo, daemon, operator)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose + args.verbose_before_command)
    try:
        return int(args.handler(args) or 0)
    except ProbeboardError as error:
        print(f"probeboard {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`probeboard leaderboard | head -1`): not an error. Point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    # -v works before and after the command name, as people type it (two dests: argparse
    # would let the command's default overwrite a count given before it).
    help_text = "log progress (-v), and the libraries' details too (-vv)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help=help_text)
    parser = argparse.ArgumentParser(
        prog="probeboard",
        description="Score fixed-size embeddings with K-fold linear probes (Q score).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        dest="verbose_before_command", help=help_text)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_commands(commands, common)
    return parser


def configure_logging(verbosity: int) -> None:
    logging.basicConfig(
        level=logging.INFO if verbosity else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if verbosity < 2:  # migrations and HTTP chatter only when asked for
        for library in ("alembic", "urllib3", "github", "apscheduler"):
            logging.getLogger(library).setLevel(logging.WARNING)
