"""One claimed submission from file to final status: fetch the file, evaluate it in a
child under limits while a heartbeat keeps the lease, then record the outcome and its
follow-ups in one transaction.

Whose fault decides what happens: the participant's file or our limits fail the
submission with a message for the participant; a passing outside problem or an organiser's
mistake hands the lease back (the submission waits, nothing is lost); a daemon told to
stop hands it back too.
"""

from __future__ import annotations

import logging
import shutil
import threading
from datetime import timedelta
from pathlib import Path

from evaluator.clients.evalai import EvalAIClient
from evaluator.daemon import child
from evaluator.daemon.outbox.followups import FollowUps
from evaluator.daemon.outbox.reporting import participant_stdout
from evaluator.daemon.settings import Settings
from evaluator.daemon.sources import SubmissionSource
from evaluator.db import evaluations, submissions
from evaluator.db.models import Loss, Source
from evaluator.db.store import Store
from evaluator.db.submissions import Claim
from evaluator.support.crashpoints import crash_point
from evaluator.support.errors import (
    Fault,
    ProbeboardError,
    ResourceLimitError,
    SubmissionError,
    participant_message,
)

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, store: Store, settings: Settings, source: SubmissionSource, *,
                 evalai: EvalAIClient | None, owner: str) -> None:
        self.store = store
        self.settings = settings
        self.source = source
        self.evalai = evalai
        self.owner = owner
        self.lease = timedelta(seconds=settings.workers.lease_seconds)
        self.follow_ups = FollowUps(settings)

    def claim(self) -> Claim | None:
        return submissions.claim_next(self.store, self.owner, self.lease)

    def process(self, submission: Claim, stop: threading.Event) -> bool:
        """Evaluate a submission this worker has claimed, to a final status (True) or back
        to the queue (False: the caller claims nothing more this pass, or it would take the
        same submission straight back)."""
        crash_point("claimed")
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(submission.id, beat_stop),
                                daemon=True, name=f"heartbeat-{submission.id}")
        beat.start()
        workdir = self.settings.workdir / "evaluations" / str(submission.id)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            return self._process(submission, workdir, stop)
        except Exception as error:  # a bug must not stop the daemon or lose the submission
            log.exception("submission %d: unexpected error", submission.id)
            return self._crashed(submission, f"{type(error).__name__}: {error}")
        finally:
            beat_stop.set()
            beat.join()
            shutil.rmtree(workdir, ignore_errors=True)

    def _process(self, submission: Claim, workdir: Path, stop: threading.Event) -> bool:
        phase = self.settings.phase(submission.phase)
        self._tell_running(submission)
        limits = self.settings.workers
        try:
            path = self.source.file_for(submission.file_url, workdir / "submission.csv",
                                        max_bytes=limits.max_file_mb * 2**20)
            if path.stat().st_size > limits.max_file_mb * 2**20:
                raise SubmissionError("file_too_large", f"the file is larger than the "
                                      f"{limits.max_file_mb} MB this challenge allows")
        except SubmissionError as error:
            return self._fail(submission, str(error))
        except ProbeboardError as error:
            return self._hand_back(submission, f"fetching its file failed: {error}")
        request = child.Request(labels=phase.labels, submission=path,
                                scoring=phase.scoring.to_dict(), threads=limits.threads,
                                memory_mb=limits.memory_mb)
        try:
            outcome = child.run(request, workdir / "child", wall_seconds=limits.wall_seconds,
                                stop=stop)
        except child.Stopped:
            return self._hand_back(submission, "the daemon is stopping")
        if isinstance(outcome, child.Failure):
            if outcome.code == "crashed":
                return self._crashed(submission, outcome.message)
            if outcome.fault in (Fault.PARTICIPANT, Fault.RESOURCES):
                return self._fail(submission, outcome.message
                                  if outcome.fault is Fault.PARTICIPANT
                                  else participant_message(ResourceLimitError(outcome.message)))
            log.error("submission %d: %s fault, not the participant's: %s; it waits until "
                      "this is fixed", submission.id, outcome.fault, outcome.message)
            return self._hand_back(submission, outcome.message)
        stdout = participant_stdout(outcome, phase.hidden_tasks)
        if evaluations.finish(self.store, submission.id, self.owner, outcome, stdout=stdout,
                              after=self.follow_ups):
            crash_point("committed")
            log.info("submission %d finished: mean Q %.3f in %.1f s", submission.id,
                     outcome.mean_quality, outcome.seconds)
        else:
            log.warning("submission %d: lease lost before the scores were written; another "
                        "worker has it", submission.id)
        return True

    def _fail(self, submission: Claim, message: str) -> bool:
        if evaluations.fail(self.store, submission.id, self.owner, stderr=message,
                            after=self.follow_ups):
            crash_point("committed")
            log.info("submission %d failed: %s", submission.id, message)
        return True

    def _crashed(self, submission: Claim, why: str) -> bool:
        """A child that died without an outcome: retried, until the attempt cap fails it."""
        if submission.attempts + 1 >= self.settings.workers.max_attempts:
            return self._fail(submission, submissions.CRASHED_MESSAGE.format(
                attempts=submission.attempts + 1))
        submissions.release(self.store, submission.id, self.owner, lost=Loss.CHILD_CRASHED)
        log.warning("submission %d: %s; retried later", submission.id, why)
        return False

    def _hand_back(self, submission: Claim, why: str) -> bool:
        submissions.release(self.store, submission.id, self.owner)
        log.warning("submission %d handed back (%s); it is evaluated again next pass",
                    submission.id, why)
        return False

    def _tell_running(self, submission: Claim) -> None:
        """EvalAI shows 'running' while we evaluate; best effort: the final PUT counts."""
        if self.evalai is None or submission.source is not Source.EVALAI:
            return
        try:
            self.evalai.set_running(int(submission.source_id), job_name=self.owner)
        except ProbeboardError as error:
            log.warning("submission %d: EvalAI not told it runs: %s", submission.id, error)

    def _heartbeat(self, submission_id: int, stop: threading.Event) -> None:
        interval = self.lease.total_seconds() / 3
        while not stop.wait(interval):
            if not submissions.renew(self.store, submission_id, self.owner, self.lease):
                log.warning("submission %d: lease lost (expired and taken back)", submission_id)
                return
