"""Where submissions come from: the EvalAI queue, or a local inbox folder.

Intake is idempotent on the source's id (EvalAI's submission pk; the inbox file's content
hash), so a redelivered message or a second scan adds nothing; a redelivered message only
refreshes the receipt handle that the ack will use, and is acked again when its submission
was already reported (outbox.followups.ack_again).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from evaluator.clients.evalai import EvalAIClient
from evaluator.daemon.outbox.followups import ack_again
from evaluator.daemon.settings import Settings
from evaluator.db.challenges import find_phase, get_or_create_challenge, get_or_create_team
from evaluator.db.models import Source
from evaluator.db.store import Store
from evaluator.db.submissions import intake_submission
from evaluator.support.crashpoints import crash_point

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_POLL = 100  # bounded: a flood of messages never starves the workers


class SubmissionSource(Protocol):
    def intake(self, store: Store) -> int:
        """Record every new submission; return how many were new."""
        ...

    def file_for(self, file_url: str, dest: Path, max_bytes: int) -> Path:
        """The submission's file on local disk (downloaded into dest when remote)."""
        ...


class EvalAISource:
    def __init__(self, settings: Settings, client: EvalAIClient) -> None:
        self.settings = settings
        self.client = client
        self.phases = {p.evalai_phase_pk: p.slug for p in settings.phases}

    def intake(self, store: Store) -> int:
        new = 0
        for _ in range(MAX_MESSAGES_PER_POLL):
            message = self.client.receive_message()
            if message is None:
                break
            crash_point("received")
            slug = self.phases.get(message.phase_pk)
            if slug is None:
                log.warning("queue message for EvalAI phase %d, which the settings do not "
                            "list: left on the queue (add the phase to the settings)",
                            message.phase_pk)
                continue
            details = self.client.get_submission(message.submission_pk)
            with store.write() as session:
                challenge = get_or_create_challenge(session, self.settings.challenge,
                                                    self.settings.title)
                phase = find_phase(session, self.settings.challenge, slug)
                assert phase is not None  # the daemon creates every configured phase
                team = get_or_create_team(
                    session, challenge, source=Source.EVALAI,
                    source_id=str(details.get("participant_team")),
                    name=str(details.get("participant_team_name") or "unnamed team"),
                )
                submission, created = intake_submission(
                    session, phase=phase, team=team, source=Source.EVALAI,
                    source_id=str(message.submission_pk),
                    receipt_handle=message.receipt_handle,
                    file_url=str(details.get("input_file") or ""),
                    is_public=bool(details.get("is_public")),
                    is_baseline=bool(details.get("is_baseline")),
                    method_name=str(details.get("method_name") or "")[:200] or None,
                    submitted_at=_time(details.get("submitted_at")),
                )
                if not created:
                    ack_again(session, submission)
            crash_point("intake")
            new += created
            if created:
                log.info("EvalAI submission %d (phase %s) taken in", message.submission_pk,
                         slug)
        return new

    def file_for(self, file_url: str, dest: Path, max_bytes: int) -> Path:
        self.client.download(file_url, dest, max_bytes=max_bytes,
                             timeout=max(60.0, max_bytes / 2**20))  # at least 1 MB/s
        return dest


class InboxSource:
    """INBOX/PHASE/TEAM.csv: each new content of a file is one submission of that team.
    Files are copied on intake, so a team may overwrite its file at any time."""

    def __init__(self, settings: Settings) -> None:
        assert settings.inbox is not None
        self.settings = settings
        self.inbox = settings.inbox
        self.kept = settings.workdir / "inbox-files"

    def intake(self, store: Store) -> int:
        new = 0
        for phase_settings in self.settings.phases:
            folder = self.inbox / phase_settings.slug
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.csv")):
                new += self._intake_file(store, phase_settings.slug, path)
        return new

    def _intake_file(self, store: Store, slug: str, path: Path) -> int:
        digest = _sha256(path)
        kept = self.kept / f"{digest}.csv"
        if not kept.exists():
            self.kept.mkdir(parents=True, exist_ok=True)
            temp = kept.with_suffix(".tmp")
            shutil.copyfile(path, temp)
            if _sha256(temp) != digest:  # rewritten while we copied: next scan takes it
                temp.unlink()
                return 0
            temp.replace(kept)
        team_name = path.stem
        with store.write() as session:
            challenge = get_or_create_challenge(session, self.settings.challenge,
                                                self.settings.title)
            phase = find_phase(session, self.settings.challenge, slug)
            assert phase is not None
            team = get_or_create_team(session, challenge, source=Source.LOCAL,
                                      source_id=team_name, name=team_name)
            _, created = intake_submission(
                session, phase=phase, team=team, source=Source.LOCAL,
                source_id=f"{slug}/{team_name}/{digest}", file_url=str(kept),
                file_sha256=digest, file_name=path.name, is_public=True,
                is_baseline=team_name.startswith("baseline"), method_name=team_name,
            )
        if created:
            log.info("inbox: %s/%s taken in", slug, path.name)
        return int(created)

    def file_for(self, file_url: str, dest: Path, max_bytes: int) -> Path:
        return Path(file_url)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _time(value: object) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)

