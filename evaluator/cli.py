"""The `probeboard` command. Thin: parsing and printing only; the work lives in the modules."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evaluator.errors import ProbeboardError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from evaluator.config import EvaluationConfig
    from evaluator.models import Phase
    from evaluator.results import EvaluationResult
    from evaluator.store import Store

log = logging.getLogger("probeboard")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except ProbeboardError as error:
        print(f"probeboard {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probeboard",
        description="Score fixed-size embeddings with K-fold linear probes (Q score).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = commands.add_parser(
        "evaluate", help="score one submission on a label folder (the reference tool's flags)"
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
    add_database(evaluate)
    add_threads(evaluate)
    evaluate.set_defaults(handler=run_evaluate)

    check = commands.add_parser(
        "check-submission", help="check a submission file before uploading (no labels needed)"
    )
    check.add_argument("file", type=Path)
    check.add_argument("--ids", type=Path, help="file listing the expected ids, one per line")
    check.add_argument("--dim", type=int, help="expected embedding dimension (e.g. 1024)")
    check.set_defaults(handler=run_check)

    board = commands.add_parser(
        "leaderboard", help="print or write the standings of recorded runs"
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

    demo_data = commands.add_parser("demo-data", help="generate a realistic demo challenge")
    demo_data.add_argument("out", type=Path)
    demo_data.add_argument("--small", action="store_true", help="small and fast (for tests)")
    demo_data.add_argument("--seed", type=int, default=0)
    demo_data.add_argument("--overwrite", action="store_true")
    demo_data.set_defaults(handler=run_demo_data)

    demo = commands.add_parser(
        "demo", help="generate the demo challenge (once) and score every demo submission"
    )
    demo.add_argument("--dir", type=Path, default=Path("demo"), help="default: ./demo")
    demo.add_argument("--small", action="store_true", help="small and fast")
    demo.add_argument("--config", type=Path, help="YAML config; default: challenge settings")
    add_threads(demo)
    demo.set_defaults(handler=run_demo)
    return parser


def add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help="scoring database URL (default: OUTPUT_DIR/probeboard.db, SQLite)")


def open_database(args: argparse.Namespace) -> Store:
    from evaluator.store import open_store

    store = open_store(args.database, path=args.output_dir / "probeboard.db")
    store.upgrade()
    return store


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="worker threads for the probes (default: every core)")


def run_evaluate(args: argparse.Namespace) -> int:
    from evaluator.run_files import format_table, write_run

    config = load(args.config)
    method = args.method_name or args.submission_file.stem
    result = score(args.annotation_path, args.submission_file, config, args.threads)
    run_dir = write_run(result, output_dir=args.output_dir, phase=args.phase, method_name=method)
    print_warnings(result)
    print(format_table(result))
    print(f"results: {run_dir}")
    from evaluator.standalone_board import record_run, update_board

    store = open_database(args)
    record_run(store, result, run_dir=run_dir, phase=args.phase, method_name=method,
               submission_file=args.submission_file)
    if config.update_leaderboard:
        print(f"leaderboard: {update_board(store, args.output_dir, args.phase)}")
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from evaluator.errors import ConfigError
    from leaderboard.phase_board import phase_board
    from leaderboard.render.board_json import board_json
    from leaderboard.render.html import board_html
    from leaderboard.render.markdown import readme_table
    from leaderboard.render.text import board_text

    default = args.output_dir / "probeboard.db"
    if args.database is None and not default.exists():  # reading must not create one
        raise ConfigError(f"no scoring database at {default}; run `probeboard evaluate` "
                          "first (or pass --output_dir / --database)")
    store = open_database(args)
    with store.session() as session:
        phases = [phase for phase in challenge_phases(session, args.challenge)
                  if args.phase in (None, phase.slug)]
        if not phases:
            raise ConfigError(
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


def challenge_phases(session: Session, challenge: str) -> list[Phase]:
    import sqlalchemy as sa

    from evaluator.models import Challenge, Phase

    return list(session.scalars(
        sa.select(Phase).join(Challenge).where(Challenge.slug == challenge).order_by(Phase.slug)
    ))


def run_check(args: argparse.Namespace) -> int:
    from evaluator.submission import check_submission

    for line in check_submission(args.file, ids_file=args.ids, embedding_dim=args.dim):
        print(line)
    return 0


def run_demo_data(args: argparse.Namespace) -> int:
    from evaluator.demo import make_demo
    from evaluator.errors import ConfigError

    try:
        demo = make_demo(args.out, small=args.small, seed=args.seed, overwrite=args.overwrite)
    except FileExistsError as error:
        raise ConfigError(f"{error} (pass --overwrite to replace it)") from None
    print(f"labels: {demo.labels}")
    for name, path in demo.submissions.items():
        print(f"submission {name}: {path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from evaluator.demo import make_demo
    from evaluator.run_files import format_table

    labels = args.dir / "labels"
    if labels.is_dir() and any(labels.iterdir()):
        from evaluator.demo import existing_demo

        demo = existing_demo(args.dir)
        print(f"using the demo challenge in {args.dir}")
    else:
        print(f"generating the demo challenge in {args.dir} ...", flush=True)
        demo = make_demo(args.dir, small=args.small)
    config = load(args.config)
    summary = []
    for name, path in demo.submissions.items():
        print(f"\n== {name} ({path.name})", flush=True)
        result = score(demo.labels, path, config, args.threads)
        print_warnings(result)
        print(format_table(result))
        summary.append((name, result.mean_quality, result.seconds))
    print("\nsubmission        mean Q   seconds")
    for name, mean_q, seconds in summary:
        print(f"{name:<16} {mean_q:>7.3f} {seconds:>9.1f}")
    return 0


def print_warnings(result: EvaluationResult) -> None:
    for warning in result.warnings:
        print(f"warning: {warning}")


def load(path: Path | None) -> EvaluationConfig:
    from evaluator.config import EvaluationConfig, load_config

    return load_config(path) if path else EvaluationConfig()


def score(
    labels: Path, submission: Path, config: EvaluationConfig, threads: int | None
) -> EvaluationResult:
    """Read, check and evaluate, with a progress bar over the tasks on a terminal."""
    from tqdm import tqdm

    from evaluator.protocol import evaluate, prepare
    from evaluator.submission import read_submission
    from evaluator.tasks import read_tasks
    from evaluator.threads import use_threads

    use_threads(threads)
    tasks = read_tasks(labels)
    # The Submission is a temporary: its matrix is freed once prepared (peak memory).
    prepared = prepare(read_submission(submission, embedding_dim=config.embedding_dim),
                       tasks, config)
    count = len(tasks) if config.task_filter is None else len(config.task_filter)
    with tqdm(total=count, unit="task", disable=None, file=sys.stderr) as bar:
        return evaluate(tasks, prepared, config, on_task_done=lambda _: bar.update(1))
