"""Drains the outbox: each due row is sent, marked done, or given a backoff.

Every handler is harmless to repeat: EvalAI's PUT has no state guard, an ack of a message
that is already gone is checked against the submission's status, and a board whose
content equals the last one sent is skipped (a GitHub commit of identical content would
be a no-op anyway). One publisher at a time holds a row, through its lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from evaluator.crashpoints import crash_point
from evaluator.daemon.followups import evalai_numbers, latest_snapshot
from evaluator.db import publications
from evaluator.db.challenges import challenge_phases
from evaluator.db.engine import Store
from evaluator.db.models import Phase, Publication, PublicationTarget, Source, Submission
from evaluator.db.models import SubmissionStatus as S
from evaluator.errors import ProbeboardError, ServiceAuthError, ServiceError
from evaluator.evalai import DeleteResult, EvalAIClient
from evaluator.settings import Settings
from leaderboard.board import Board
from leaderboard.phase_board import phase_board
from leaderboard.publish.files import board_files, readme_with, write_board_files
from leaderboard.publish.github import GitHubPublisher, GitHubTarget

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
AUTH_RETRY_SECONDS = 15 * 60.0  # a refused token waits for the operator, slowly
FINAL = {"finished", "failed", "cancelled"}


class Publisher:
    def __init__(self, store: Store, settings: Settings, *, evalai: EvalAIClient | None,
                 github: GitHubPublisher | None) -> None:
        self.store = store
        self.settings = settings
        self.evalai = evalai
        self.github = github
        self.handlers: dict[tuple[PublicationTarget, str], Callable[[Publication], str | None]]
        self.handlers = {
            (PublicationTarget.EVALAI, "report"): self._report,
            (PublicationTarget.EVALAI, "ack"): self._ack,
            (PublicationTarget.EVALAI, "ranks"): self._ranks,
            (PublicationTarget.FILES, "board"): self._files_board,
            (PublicationTarget.GITHUB, "board"): self._github_board,
        }

    def drain(self, owner: str, *, stop: Callable[[], bool] = lambda: False) -> int:
        """Send every due row (rows that become due meanwhile, e.g. acks after their
        report, in the same call); return how many were done."""
        sent = 0
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
        handler = self.handlers.get((row.target, row.action))
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
            numbers = evalai_numbers(self.settings, session, submission.phase)[submission.id]
            self._put(client, session, submission, numbers)
            return publications.content_digest(numbers)

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

    def _ranks(self, row: Publication) -> str | None:
        """Re-PUT every finished result whose numbers changed since they were last sent."""
        client = self._client()
        with self.store.session() as session:
            phase = _phase(session, row)
            numbers = evalai_numbers(self.settings, session, phase)
            by_id = {s.id: s for s in phase.submissions}
            for submission_id, values in sorted(numbers.items()):
                digest = publications.content_digest(values)
                sent = publications.last_done_digest(
                    session, PublicationTarget.EVALAI, ["report", "rank"],
                    submission_id=submission_id)
                if sent == digest:
                    continue
                self._put(client, session, by_id[submission_id], values)
                crash_point("evalai.rank.sent")
                with self.store.write() as record:  # what this submission now shows
                    publications.record_sent(record, PublicationTarget.EVALAI, "rank",
                                             submission_id=submission_id, digest=digest)
        return None

    # ---- boards --------------------------------------------------------------------

    def _files_board(self, row: Publication) -> str | None:
        assert self.settings.publish_folder is not None
        with self.store.session() as session:
            phase = _phase(session, row)
            digest = _standings_digest(session, [phase])
            if digest == publications.last_done_digest(
                    session, PublicationTarget.FILES, ["board"], phase_id=phase.id):
                return digest
            (board,) = _boards(session, [phase])
        write_board_files(board, self.settings.publish_folder / phase.slug)
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
                    session, PublicationTarget.GITHUB, ["board"]):
                return digest
            boards = _boards(session, phases)
        files = {f"{board.phase}/{name}": data
                 for board in boards for name, data in board_files(board).items()}
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


def _boards(session: Session, phases: list[Phase]) -> list[Board]:
    """The phases' boards as of their newest standings, not of the clock: the same standings
    give the same bytes, so a board sent again after a crash (between the commit and its
    record) changes no file and makes no commit."""
    as_of = max((snapshot.created_at for phase in phases
                 if (snapshot := latest_snapshot(session, phase))), default=None)
    return [phase_board(session, phase, now=as_of) for phase in phases]


def _standings_digest(session: Session, phases: list[Phase]) -> str:
    return publications.content_digest({
        phase.slug: (snapshot.payload if (snapshot := latest_snapshot(session, phase)) else None)
        for phase in phases
    })
