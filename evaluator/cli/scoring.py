"""`probeboard evaluate` and `probeboard check-submission`."""

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


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    evaluate = commands.add_parser(
        "evaluate", parents=[common],
        help="score one submission on a label folder (the reference tool's flags)",
    )
    evaluate.add_argument("--annotation_path", "--annotation-path", "--labels", type=Path,
                          required=True, help="folder of <task>__<regr|cls>.csv label files")
    evaluate.add_argument("--submission_file", "--submission-file", "--submission", type=Path,
                          required=True, help="embeddings CSV: id column + embedding columns")
    evaluate.add_argument("--output_dir", "--output-dir", "--output", type=Path,
                          default=Path("results"), help="where run folders go (default: results)")
    evaluate.add_argument("--config", type=Path,
                          help="YAML config (the reference's keys); default: challenge settings")
    evaluate.add_argument("--method_name", "--method-name", "--method", default=None,
                          help="name of your method (default: the submission file's stem)")
    evaluate.add_argument("--phase", default="all", help="phase label (default: all)")
    evaluate.add_argument("--baseline", action="store_true",
                          help="a baseline: ranked and shown, but marked non-competing")
    add_database(evaluate)
    add_threads(evaluate)
    evaluate.set_defaults(handler=run_evaluate)

    check = commands.add_parser(
        "check-submission", parents=[common],
        help="check a submission file before uploading (no labels needed)",
    )
    check.add_argument("file", type=Path)
    check.add_argument("--ids", type=Path, help="file listing the expected ids, one per line")
    check.add_argument("--dim", type=int, help="expected embedding dimension (e.g. 1024)")
    check.set_defaults(handler=run_check)


def run_evaluate(args: argparse.Namespace) -> int:
    from evaluator.runs.folders import check_name, format_table, write_run
    from leaderboard.standalone import record_run, update_board

    config = load_config(args.config)
    method = args.method_name or args.submission_file.stem
    check_name(method, "--method_name")
    check_name(args.phase, "--phase")
    store = open_database(args)  # before scoring: a bad --database fails in a second
    result = score_with_progress(args.annotation_path, args.submission_file, config,
                                 args.threads)
    run_dir = write_run(result, output_dir=args.output_dir, phase=args.phase, method_name=method)
    print_warnings(result)
    print(format_table(result))
    print(f"results: {run_dir}")
    record_run(store, result, run_dir=run_dir, phase=args.phase, method_name=method,
               submission_file=args.submission_file, is_baseline=args.baseline)
    if config.update_leaderboard:
        print(f"leaderboard: {update_board(store, args.output_dir, args.phase)}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from evaluator.scoring.reader.check import check_submission

    for line in check_submission(args.file, ids_file=args.ids, embedding_dim=args.dim):
        print(line)
    return 0
