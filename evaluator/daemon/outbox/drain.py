"""Drains the outbox: each due row is sent, marked done, or given a backoff.

Every handler is harmless to repeat: EvalAI's PUT has no state guard, an ack of a message
that is already gone is checked against the submission's status, and a board whose
content equals the last one sent is skipped (a GitHub commit of identical content would
be a no-op anyway). One publisher at a time holds a row, through its lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from evaluator.clients.evalai import DeleteResult, EvalAIClient
from evaluator.clients.github import GitHubPublisher, GitHubTarget
from evaluator.daemon.outbox.actions import Action, action_of
from evaluator.daemon.outbox.reporting import HIDDEN_STDERR, evalai_numbers
from evaluator.daemon.settings import Settings
from evaluator.db import publications
from evaluator.db.challenges import challenge_phases
from evaluator.db.models import Phase, Publication, PublicationTarget, Source, Submission
from evaluator.db.models import SubmissionStatus as S
from evaluator.db.snapshots import latest_snapshot
from evaluator.db.store import Store
from evaluator.support.crashpoints import crash_point
from evaluator.support.errors import ProbeboardError, ServiceAuthError, ServiceError
from leaderboard.board import Board
from leaderboard.phase_board import phase_board
from leaderboard.publish.files import board_files, readme_with, write_board_files

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
AUTH_RETRY_SECONDS = 15 * 60.0  # a refused token waits for the operator, slowly
FINAL = {"finished", "failed", "cancelled"}


@dataclass(frozen=True)
class Rendered:
    key: tuple[int | None, datetime | None]  # the phase's newest snapshot, the boards' date
    board: Board
    files: dict[str, bytes]


class Publisher:
    def __init__(self, store: Store, settings: Settings, *, evalai: EvalAIClient | None,
                 github: GitHubPublisher | None) -> None:
        self.store = store
        self.settings = settings
        self.evalai = evalai
        self.github = github
        self.handlers: dict[tuple[PublicationTarget, Action],
                            Callable[[Publication], str | None]]
        self.handlers = {
            (PublicationTarget.EVALAI, Action.REPORT): self._report,
            (PublicationTarget.EVALAI, Action.ACK): self._ack,
            (PublicationTarget.EVALAI, Action.RANKS): self._ranks,
            (PublicationTarget.EVALAI, Action.BASELINE): self._baseline,
            (PublicationTarget.FILES, Action.BOARD): self._files_board,
            (PublicationTarget.GITHUB, Action.BOARD): self._github_board,
        }
        self.rendered: dict[int, Rendered] = {}  # by phase id: the newest standings only
        self.numbers: dict[int, tuple[int | None, dict[int, dict[str, float]]]] = {}

    def drain(self, owner: str, *, stop: Callable[[], bool] = lambda: False) -> int:
        """Send every due row (rows that become due meanwhile, e.g. acks after their
        report, in the same call); return how many were done."""
        sent = 0
        self.numbers.clear()  # statuses may have changed since the last drain
        while not stop():
            rows = publications.claim_due(self.store, owner, LEASE)
            if not rows:
                return sent
            for row in rows:
                if stop():
                    break
                sent += self._send(row)
        return sent

    def _send(self, row: Publication) -> int:
        action = action_of(row.action)
        handler = self.handlers.get((row.target, action)) if action is not None else None
        what = f"publication {row.id} ({row.target} {row.action})"
        try:
            if handler is None:
                raise ProbeboardError(f"no publisher for {row.target} {row.action}")
            digest = handler(row)
        except ServiceAuthError as error:
            log.error("ALERT %s: %s; retrying every %.0f min until the token works",
                      what, error, AUTH_RETRY_SECONDS / 60)
            publications.failed(self.store, row.id, str(error), retryable=True,
                                retry_after=AUTH_RETRY_SECONDS)
            return 0
        except ServiceError as error:
            when = publications.failed(self.store, row.id, str(error),
                                       retryable=error.retryable, retry_after=error.retry_after)
            log.warning("%s failed: %s; %s", what, error,
                        f"next try at {when:%H:%M:%S}" if when else "gave up (not retryable)")
            return 0
        except ProbeboardError as error:
            log.error("%s cannot be sent: %s; it stays failed (probeboard status lists it) "
                      "until the cause is fixed and the row is made pending again", what, error)
            publications.failed(self.store, row.id, str(error), retryable=False)
            return 0
        except Exception as error:  # a bug must not stop the outbox: log it, retry later
            log.exception("%s failed unexpectedly", what)
            publications.failed(self.store, row.id, f"{type(error).__name__}: {error}",
                                retryable=True)
            return 0
        crash_point(f"{row.target}.{row.action}.sent")
        publications.done(self.store, row.id, digest=digest)
        log.info("%s done", what)
        return 1

    # ---- EvalAI --------------------------------------------------------------------

    def _client(self) -> EvalAIClient:
        if self.evalai is None:
            raise ProbeboardError("an EvalAI publication is pending but evalai is not "
                                  "configured; add the evalai section back")
        return self.evalai

    def _report(self, row: Publication) -> str | None:
        client = self._client()
        with self.store.session() as session:
            submission = _submission(session, row)
            pk = int(submission.source_id)
            if submission.status is S.FAILED:
                client.set_failed(pk, submission.stderr or "", stdout=submission.stdout or "")
                return None
            if submission.status is not S.FINISHED:
                return None  # requeued or cancelled since: a later report follows
            if submission.hidden:
                client.set_cancelled(pk, HIDDEN_STDERR, stdout=submission.stdout or "")
                return None
            numbers = self._numbers(session, submission.phase)[submission.id]
            self._put(client, session, submission, numbers)
            return publications.content_digest(numbers)

    def _numbers(self, session: Session, phase: Phase) -> dict[int, dict[str, float]]:
        """evalai_numbers, computed once per standings snapshot within a drain (a pass that
        finished many submissions holds a report and a ranks row for each)."""
        snapshot = latest_snapshot(session, phase)
        key = snapshot.id if snapshot is not None else None
        cached = self.numbers.get(phase.id)
        if cached is None or cached[0] != key:
            cached = self.numbers[phase.id] = (key, evalai_numbers(self.settings, session, phase))
        return cached[1]

    def _put(self, client: EvalAIClient, session: Session, submission: Submission,
             numbers: dict[str, float]) -> None:
        assert self.settings.evalai is not None
        phase = self.settings.phase(submission.phase.slug)
        client.set_finished(
            int(submission.source_id), _evalai_phase(phase.evalai_phase_pk, submission),
            [{"split": self.settings.evalai.split, "show_to_participant": True,
              "accuracies": numbers}],
            stdout=submission.stdout or "",
        )

    def _ack(self, row: Publication) -> str | None:
        client = self._client()
        with self.store.session() as session:
            submission = _submission(session, row)
            handle, pk = submission.receipt_handle, int(submission.source_id)
        if handle is None:
            return None
        crash_point("evalai.ack.deleting")
        if client.delete_message(handle) is DeleteResult.MAYBE_GONE:
            status = client.get_submission(pk).get("status")
            if status not in FINAL:
                raise ServiceError("EvalAI", f"the queue message of submission {pk} may not "
                                   f"be deleted and EvalAI says {status!r}", retryable=True)
        return None

    def _baseline(self, row: Publication) -> str | None:
        """The flag as it is now (a retried row never sends an undone change)."""
        client = self._client()
        with self.store.session() as session:
            submission = _submission(session, row)
            pk, baseline = int(submission.source_id), submission.is_baseline
        client.set_baseline(pk, baseline)
        return None

    def _ranks(self, row: Publication) -> str | None:
        """Re-PUT every finished result whose numbers changed since they were last sent."""
        client = self._client()
        with self.store.session() as session:
            phase = _phase(session, row)
            numbers = self._numbers(session, phase)
            by_id = {s.id: s for s in phase.submissions}
            shown = publications.last_sent_digests(
                session, PublicationTarget.EVALAI, [Action.REPORT, Action.RANK], numbers)
            for submission_id, values in sorted(numbers.items()):
                digest = publications.content_digest(values)
                if shown.get(submission_id) == digest:
                    continue
                self._put(client, session, by_id[submission_id], values)
                crash_point("evalai.rank.sent")
                with self.store.write() as record:  # what this submission now shows
                    publications.record_sent(record, PublicationTarget.EVALAI, Action.RANK,
                                             submission_id=submission_id, digest=digest)
        return None

    # ---- boards --------------------------------------------------------------------

    def _rendered_board(self, session: Session, phase: Phase) -> Rendered:
        """The phase's board and its files, rendered once per standings (the pictures
        take about a second; the folder and GitHub publish the same files).

        Dated as of the challenge's newest standings, not of the clock: the same standings
        give the same bytes, so a board sent again after a crash (between the commit and
        its record) changes no file and makes no commit."""
        as_of = max((snapshot.created_at
                     for each in challenge_phases(session, self.settings.challenge)
                     if (snapshot := latest_snapshot(session, each))), default=None)
        newest = latest_snapshot(session, phase)  # a new snapshot on every change
        key = (newest.id if newest is not None else None, as_of)
        cached = self.rendered.get(phase.id)
        if cached is None or cached.key != key:
            board = phase_board(session, phase, now=as_of)
            cached = self.rendered[phase.id] = Rendered(key, board, board_files(board))
        return cached

    def _files_board(self, row: Publication) -> str | None:
        assert self.settings.publish_folder is not None
        with self.store.session() as session:
            phase = _phase(session, row)
            digest = _standings_digest(session, [phase])
            if digest == publications.last_done_digest(
                    session, PublicationTarget.FILES, [Action.BOARD], phase_id=phase.id):
                return digest
            rendered = self._rendered_board(session, phase)
        write_board_files(rendered.board, self.settings.publish_folder / phase.slug,
                          rendered.files)
        return digest

    def _github_board(self, row: Publication) -> str | None:
        github = self.settings.github
        if github is None or self.github is None:
            raise ProbeboardError("a GitHub publication is pending but publish.github is not "
                                  "configured; add it back")
        with self.store.session() as session:
            phases = challenge_phases(session, self.settings.challenge)
            digest = _standings_digest(session, phases)
            if digest == publications.last_done_digest(
                    session, PublicationTarget.GITHUB, [Action.BOARD]):
                return digest
            rendered = [self._rendered_board(session, phase) for phase in phases]
        boards = [r.board for r in rendered]
        files = {f"{r.board.phase}/{name}": data
                 for r in rendered for name, data in r.files.items()}
        target = GitHubTarget(repo=github.repo, branch=github.branch, folder=github.folder,
                              readme=github.readme)
        self.github.publish(
            target, files, lambda text: readme_with(boards, text or None, self.settings.title),
            f"Leaderboard: {', '.join(board.phase for board in boards)} updated",
        )
        return digest


def _submission(session: Session, row: Publication) -> Submission:
    submission = session.get(Submission, row.submission_id)
    if submission is None or submission.source is not Source.EVALAI:
        raise ProbeboardError(f"publication {row.id} names no EvalAI submission")
    return submission


def _phase(session: Session, row: Publication) -> Phase:
    phase = session.get(Phase, row.phase_id)
    if phase is None:
        raise ProbeboardError(f"publication {row.id} names no phase")
    return phase


def _evalai_phase(configured: int | None, submission: Submission) -> int:
    if configured is None:
        raise ProbeboardError(f"phase {submission.phase.slug} has no evalai_phase_pk")
    return configured


def _standings_digest(session: Session, phases: list[Phase]) -> str:
    return publications.content_digest({
        phase.slug: (snapshot.payload if (snapshot := latest_snapshot(session, phase)) else None)
        for phase in phases
    })
