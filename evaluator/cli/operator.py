"""The operator's commands: `probeboard show`, `requeue`, `rescore`, `hide`, `unhide`,
`baseline`. Each change is recorded with who (--by), when and why (--reason); the running
daemon's next pass evaluates and publishes what follows."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from evaluator.cli.daemon import add_settings

SUBMISSION_HELP = "the submission: its id (probeboard status lists them) or evalai:PK"


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    show = commands.add_parser("show", parents=[common],
                               help="one submission with its log: scores, outputs, outbox, "
                                    "operator actions")
    add_settings(show)
    show.add_argument("submission", metavar="SUBMISSION", help=SUBMISSION_HELP)
    show.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    show.set_defaults(handler=run_show)

    requeue = _action(commands, common, "requeue",
                      "evaluate a failed or finished submission again and report it anew")
    requeue.add_argument("submission", metavar="SUBMISSION", help=SUBMISSION_HELP)
    requeue.set_defaults(handler=run_requeue)

    rescore = _action(commands, common, "rescore",
                      "after a label fix: evaluate every failed or finished submission of a "
                      "phase again; standings and boards follow")
    rescore.add_argument("phase", metavar="PHASE", help="the phase's slug, as in the settings")
    rescore.set_defaults(handler=run_rescore)

    for name, hidden, text in (
            ("hide", True, "disqualify a submission: off the standings, boards and EvalAI's "
                           "leaderboard"),
            ("unhide", False, "show a hidden submission again")):
        command = _action(commands, common, name, text)
        command.add_argument("submission", metavar="SUBMISSION", help=SUBMISSION_HELP)
        command.set_defaults(handler=run_hide, hidden=hidden)

    baseline = _action(commands, common, "baseline",
                       "mark a submission as a baseline: ranked and listed, but non-competing")
    baseline.add_argument("submission", metavar="SUBMISSION", help=SUBMISSION_HELP)
    baseline.add_argument("--off", action="store_true", help="unmark it instead")
    baseline.set_defaults(handler=run_baseline)


def _action(commands: Any, common: argparse.ArgumentParser, name: str,
            text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, parents=[common], help=text)
    add_settings(parser)
    parser.add_argument("--reason", required=True,
                        help="why (kept with the action in the operator_action table)")
    parser.add_argument("--by", metavar="NAME",
                        help="who acts (default: your login name)")
    return parser


def run_show(args: argparse.Namespace) -> int:
    from evaluator.daemon.settings import load_settings
    from evaluator.operator.show import as_json, as_text, submission_view

    view = submission_view(load_settings(args.settings), args.submission)
    print(as_json(view) if args.json else as_text(view))
    return 0


def run_requeue(args: argparse.Namespace) -> int:
    from evaluator.operator.actions import requeue

    return _done(args, requeue, args.submission)


def run_rescore(args: argparse.Namespace) -> int:
    from evaluator.operator.actions import rescore

    return _done(args, rescore, args.phase)


def run_hide(args: argparse.Namespace) -> int:
    from evaluator.operator.actions import set_hidden

    return _done(args, set_hidden, args.submission, args.hidden)


def run_baseline(args: argparse.Namespace) -> int:
    from evaluator.operator.actions import set_baseline

    return _done(args, set_baseline, args.submission, not args.off)


def _done(args: argparse.Namespace, action: Callable[..., str], *targets: object) -> int:
    from evaluator.daemon.settings import load_settings
    from evaluator.operator.actions import Actor, login_name

    actor = Actor(who=args.by or login_name(), why=args.reason)
    print(action(load_settings(args.settings), *targets, actor))
    return 0
