"""The daemon: one pass = expire lost leases, take in new submissions, evaluate while
workers are free, drain the outbox. `run_once` does one pass; `run_forever` schedules a
pass every poll_seconds with APScheduler (no overlap, coalesced) until a signal.

Signals: the first SIGTERM/SIGINT stops polling and lets the running evaluation finish
within workers.shutdown_grace_seconds (then its child is killed and its lease handed
back); a second one stops at once the same way. Either way the process exits cleanly and
the next start picks up every unfinished row.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import FrameType

from evaluator.daemon.outbox.drain import Publisher
from evaluator.daemon.settings import Settings
from evaluator.daemon.sources import EvalAISource, InboxSource, SubmissionSource
from evaluator.daemon.wiring import clients
from evaluator.daemon.worker import Worker
from evaluator.db import submissions
from evaluator.db.challenges import get_or_create_challenge, get_or_create_phase
from evaluator.db.models import CountingRule
from evaluator.db.store import open_store
from evaluator.scoring.tasks import read_tasks, select_tasks
from evaluator.support.errors import ProbeboardError, ServiceAuthError, ServiceError
from evaluator.support.jsonio import write_atomic

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, settings: Settings, *, owner: str | None = None) -> None:
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.stop_polling = threading.Event()  # first signal
        self.stop_now = threading.Event()  # grace over, or second signal: kill children
        self.in_pass = threading.Event()
        self.store = open_store(settings.database)
        self.store.upgrade()
        self._create_phases()
        self.clients = clients(settings)
        self.evalai = self.clients.evalai
        self.source: SubmissionSource = (EvalAISource(settings, self.evalai)
                                         if self.evalai is not None else InboxSource(settings))
        self.publisher = Publisher(self.store, settings, evalai=self.evalai,
                                   github=self.clients.github)
        self.status_file = settings.workdir / "status.json"
        self.status: dict[str, object] = {"owner": self.owner}

    def _create_phases(self) -> None:
        """Every configured phase exists with its scoring settings; a phase whose settings
        changed since it was created is refused (PhaseSettingsMismatch) before any work."""
        settings = self.settings
        with self.store.write() as session:
            challenge = get_or_create_challenge(session, settings.challenge, settings.title)
            for phase in settings.phases:
                tasks = select_tasks(read_tasks(phase.labels), phase.scoring.task_filter)
                get_or_create_phase(
                    session, challenge, phase.slug,
                    scoring=phase.scoring.scoring_settings(), tasks=[t.name for t in tasks],
                    counting_rule=CountingRule(phase.counting_rule),
                    hidden_tasks=phase.hidden_tasks,
                )

    # ---- one pass ------------------------------------------------------------------

    def run_once(self) -> dict[str, int]:
        """Expire, take in, evaluate until nothing is left to claim, publish."""
        counts = {"expired": 0, "new": 0, "evaluated": 0, "published": 0}
        expired = submissions.expire_leases(
            self.store, max_interruptions=self.settings.workers.max_interruptions)
        counts["expired"] = len(expired)
        for submission_id in expired.held:
            log.error("ALERT submission %d held: the daemon stopped %d times while evaluating "
                      "it; `probeboard show %d` tells more, `probeboard requeue %d` tries "
                      "again", submission_id, self.settings.workers.max_interruptions,
                      submission_id, submission_id)
        try:
            counts["new"] = self.source.intake(self.store)
            self._note("last_poll")
        except ServiceAuthError as error:
            log.error("ALERT EvalAI refused the token: %s; polling again next pass", error)
        except ServiceError as error:
            log.warning("taking in submissions failed: %s; next pass tries again", error)
        counts["evaluated"] = self._evaluate_all()
        counts["published"] = self.publisher.drain(self.owner, stop=self.stop_now.is_set)
        if counts["published"]:
            self._note("last_publish")
        self._note("last_pass")
        log.info("pass: %s", ", ".join(f"{key} {value}" for key, value in counts.items()))
        return counts

    def _evaluate_all(self) -> int:
        workers = self.settings.workers.concurrent

        def work() -> int:
            worker = Worker(self.store, self.settings, self.source, evalai=self.evalai,
                            owner=self.owner)
            done = 0
            while not self.stop_polling.is_set():
                claimed = worker.claim()
                if claimed is None or not worker.process(claimed, self.stop_now):
                    return done  # empty, or handed back: claimed again next pass
                done += 1
            return done

        with ThreadPoolExecutor(workers, thread_name_prefix="worker") as pool:
            return sum(f.result() for f in [pool.submit(work) for _ in range(workers)])

    def _note(self, key: str) -> None:
        """status.json: what `probeboard status` shows of a running daemon."""
        self.status[key] = datetime.now(UTC).isoformat(timespec="seconds")
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.status_file, json.dumps(self.status, indent=2).encode())

    # ---- forever ---------------------------------------------------------------------

    def run_forever(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self._install_signals()
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self._guarded_pass, "interval", seconds=self.settings.poll_seconds,
            id="poll", max_instances=1, coalesce=True,
            misfire_grace_time=int(self.settings.poll_seconds),
            next_run_time=datetime.now(UTC),
        )
        scheduler.start()
        log.info("probeboard daemon %s polling every %.0f s", self.owner,
                 self.settings.poll_seconds)
        try:
            self.stop_polling.wait()
            scheduler.shutdown(wait=False)  # no new pass; the running one may finish
            deadline = time.monotonic() + self.settings.workers.shutdown_grace_seconds
            while (self.in_pass.is_set() and not self.stop_now.is_set()
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            # Still evaluating after the grace: kill the child, hand the lease back.
            self.stop_now.set()
            while self.in_pass.is_set():
                time.sleep(0.05)
        finally:
            self.close()
        log.info("probeboard daemon %s stopped", self.owner)

    def _guarded_pass(self) -> None:
        if self.stop_polling.is_set():
            return
        self.in_pass.set()
        try:
            self.run_once()
        except ProbeboardError as error:
            log.error("pass failed: %s", error)
        except Exception:  # the schedule must survive a bug in one pass
            log.exception("pass failed unexpectedly")
        finally:
            self.in_pass.clear()

    def _install_signals(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            if self.stop_polling.is_set():
                log.warning("second %s: stopping now", signal.Signals(signum).name)
                self.stop_now.set()
            else:
                log.info("%s: no new work; the running evaluation may finish",
                         signal.Signals(signum).name)
                self.stop_polling.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def close(self) -> None:
        self.clients.close()
        self.store.close()

