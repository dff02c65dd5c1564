"""One evaluation in a child process under limits, so a hostile or huge file costs that
submission only: the daemon survives an out-of-memory kill, a hang or a crash.

The parent writes a request (labels, file, scoring config, threads, memory) as JSON and
starts `python -m evaluator.daemon.child REQUEST OUTCOME` in a new process group. The
child caps its own address space (RLIMIT_AS) before the heavy imports, scores with the
engine, and writes the outcome: the pickled EvaluationResult, or the error (fault and
participant message). The parent kills the whole group at the wall-time limit or when
told to stop. A child asks the kernel to kill it when the daemon dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.scoring.config import config_from_mapping
from evaluator.scoring.results import EvaluationResult
from evaluator.support.crashpoints import crash_point
from evaluator.support.errors import (
    EvaluationOutOfMemory,
    EvaluationTimeout,
    Fault,
    ProbeboardError,
    SubmissionError,
)

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR = 0, 3


@dataclass(frozen=True)
class Request:
    labels: Path
    submission: Path
    scoring: dict[str, Any]
    threads: int
    memory_mb: int


@dataclass(frozen=True)
class Failure:
    """Why an evaluation gave no result: whose fault, and what the participant may read."""

    fault: Fault
    message: str  # the participant's (SubmissionError) or the operator's
    code: str = ""


class Stopped(Exception):
    """The daemon was told to stop while the child ran; the child was killed."""


def run(request: Request, workdir: Path, *, wall_seconds: float,
        stop: threading.Event | None = None) -> EvaluationResult | Failure:
    """Run one evaluation in a child; return its result or why there is none. Raises
    Stopped when `stop` is set before the child ends (the caller hands the lease back)."""
    workdir.mkdir(parents=True, exist_ok=True)
    request_file, outcome_file = workdir / "request.json", workdir / "outcome.pickle"
    outcome_file.unlink(missing_ok=True)
    request_file.write_text(json.dumps({
        "labels": str(request.labels), "submission": str(request.submission),
        "scoring": request.scoring, "threads": request.threads,
        "memory_mb": request.memory_mb, "daemon_pid": os.getpid(),
    }))
    threads = str(request.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads}
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "evaluator.daemon.child", str(request_file), str(outcome_file)],
        start_new_session=True, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=(workdir / "child.log").open("wb"),
    )
    try:
        while True:
            try:
                code = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                crash_point("evaluating")
            if stop is not None and stop.is_set():
                raise Stopped
            if time.monotonic() - started > wall_seconds:
                _kill(child)
                return Failure(Fault.RESOURCES, str(EvaluationTimeout(
                    f"the evaluation took longer than the {wall_seconds:.0f} s allowed")),
                    "timeout")
    finally:
        if child.poll() is None:
            _kill(child)
    return _outcome(code, outcome_file, request.memory_mb)


def _kill(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # the group: numba/torch threads and helpers
    child.wait()


def _outcome(code: int, outcome_file: Path, memory_mb: int) -> EvaluationResult | Failure:
    if outcome_file.exists():
        with outcome_file.open("rb") as handle:
            outcome = pickle.load(handle)  # written by our own child, never by a participant
        if isinstance(outcome, EvaluationResult | Failure):
            return outcome
    if code < 0 and -code == signal.SIGKILL:  # the kernel's OOM killer, or a limit
        return Failure(Fault.RESOURCES, str(EvaluationOutOfMemory(
            f"the evaluation was killed (out of memory above {memory_mb} MB?)")), "killed")
    return Failure(Fault.ORGANISER, f"the evaluation process ended with status {code} "
                   "without an outcome; see child.log in its work folder", "crashed")


def main(request_path: str, outcome_path: str) -> int:
    raw = json.loads(Path(request_path).read_text())
    _die_with(int(raw["daemon_pid"]))
    limit = int(raw["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    outcome: EvaluationResult | Failure
    try:
        from evaluator.scoring.engine import score_submission

        outcome = score_submission(raw["labels"], raw["submission"],
                                   config_from_mapping(raw["scoring"]),
                                   threads=int(raw["threads"]))
    except SubmissionError as error:
        outcome = Failure(Fault.PARTICIPANT, str(error), error.code)
    except ProbeboardError as error:
        outcome = Failure(error.fault, str(error), type(error).__name__)
    except MemoryError:
        outcome = Failure(Fault.RESOURCES, str(EvaluationOutOfMemory(
            f"the evaluation needed more than the {raw['memory_mb']} MB allowed")), "memory")
    _write(Path(outcome_path), outcome)
    return EXIT_OK if isinstance(outcome, EvaluationResult) else EXIT_ERROR


def _die_with(daemon_pid: int) -> None:
    """Be killed when the daemon dies (Linux): a SIGKILLed daemon cannot kill its child, and
    an orphan would run past every wall-time limit and race the restart's evaluation.
    The signal comes when the thread that started the child ends: a worker thread waits
    for its child, so only the daemon's death can end it first."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != daemon_pid:  # it died before we asked
        os._exit(EXIT_ERROR)


def _write(path: Path, outcome: EvaluationResult | Failure) -> None:
    temp = path.with_suffix(".tmp")
    with temp.open("wb") as handle:
        pickle.dump(outcome, handle)
    os.replace(temp, path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    # Through the module's own name: the pickled Failure must be evaluator.daemon.child's,
    # not __main__'s, for the parent to load it.
    from evaluator.daemon import child as this_module

    sys.exit(this_module.main(sys.argv[1], sys.argv[2]))
