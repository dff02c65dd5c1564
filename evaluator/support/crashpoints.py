"""A test hook: SIGKILL this process at a named step, to prove a restart loses nothing.

The daemon calls `crash_point(name)` after each step whose effect must survive a crash
(a commit, a request to EvalAI or GitHub). With PROBEBOARD_CRASH_AT unset, as in
production, a call costs one dictionary lookup. With PROBEBOARD_CRASH_AT=NAME the process
kills itself the first time it reaches NAME; NAME:N kills it the N-th time. SIGKILL, not
an exception: no `finally`, no handler, no flush runs, exactly as the kernel's OOM killer
or a power cut would leave things.

    received             a queue message was received, its intake not yet committed
    intake               an EvalAI submission's intake was committed
    claimed              a worker's claim (lease) was committed
    evaluating           the evaluation child runs
    committed            a final status (scores or error) and its follow-ups were committed
    TARGET.ACTION.sent   an outbox row was sent (e.g. evalai.report.sent), not yet marked done
    evalai.rank.sent     a changed rank was re-PUT, not yet recorded
    evalai.ack.deleting  the ack is about to delete the queue message
    github.ref-update    a GitHub commit was created, the branch not yet moved to it
"""

from __future__ import annotations

import os
import signal
import threading

ENVIRONMENT = "PROBEBOARD_CRASH_AT"

_reached: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENVIRONMENT)
    if wanted is None:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    with _lock:  # several workers may reach the same point at once
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
