"""The data an EvalAI-compatible test server holds, and the platform rules that act on it.

Built from ../shared/spec/evalai-api.md (§1, §1.8, §1.9): users and their two token kinds,
a host team per challenge, participant teams, phases, dataset splits, leaderboard schemas,
phase splits, submissions, leaderboard rows and an SQS-like queue per challenge. No HTTP
here (evalai_handler.py does that), so the rules can be read on their own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


def now_iso(moment: dt.datetime | None = None) -> str:
    """DRF's datetime format with USE_TZ: microseconds and a Z."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fake_jwt() -> str:
    """Shaped like the JWT refresh token EvalAI's profile page hands out (three parts)."""
    return ".".join(("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9",
                     "eyJ" + secrets.token_urlsafe(90), secrets.token_urlsafe(32)))


@dataclass
class User:
    pk: int
    username: str
    email: str
    jwt: str = field(default_factory=fake_jwt)
    expiring_token: str = field(default_factory=lambda: secrets.token_hex(20))
    password: str = "password"
    verified: bool = True
    expired: bool = False  # both tokens answer as expired


@dataclass
class Team:
    pk: int
    name: str
    members: set[int]


@dataclass
class Challenge:
    pk: int
    title: str
    queue: str
    host_users: set[int]
    participant_teams: set[int] = field(default_factory=set)


@dataclass
class Phase:
    pk: int
    challenge: int
    codename: str
    name: str
    is_public: bool = True
    leaderboard_public: bool = True
    is_submission_public: bool = True
    submission_meta_attributes: list[dict[str, Any]] | None = None


@dataclass
class PhaseSplit:
    pk: int
    phase: int
    split: str  # DatasetSplit codename
    schema: dict[str, Any]  # the Leaderboard's schema: labels, default_order_by, metadata
    visibility: int = 3  # 1 host, 2 owner and host, 3 public
    is_leaderboard_order_descending: bool = True
    show_leaderboard_by_latest_submission: bool = False


@dataclass
class Submission:
    pk: int
    phase: int
    team: int
    created_by: int
    input_file: str  # path under /media/
    submitted_at: dt.datetime
    status: str = "submitted"
    is_public: bool = True
    is_baseline: bool = False
    is_flagged: bool = False
    ignore_submission: bool = False
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    job_name: list[str] = field(default_factory=list)
    submission_metadata: Any = None
    method_name: str = ""
    method_description: str = ""
    project_url: str = ""
    publication_url: str = ""
    stdout_file: str | None = None
    stderr_file: str | None = None
    environment_log_file: str | None = None
    result_file: str | None = None
    metadata_file: str | None = None
    history: list[str] = field(default_factory=list)  # each status set by the host, in order


@dataclass
class LeaderboardRow:
    pk: int
    submission: int
    phase_split: int
    result: dict[str, Any]
    is_disabled: bool = False


@dataclass
class Message:
    """One SQS message: invisible until `visible_at` after each receive."""

    body: dict[str, Any]
    group: str
    handles: list[str] = field(default_factory=list)
    visible_at: float = 0.0
    deleted: bool = False


class State:
    """Everything the server knows; every public method takes the lock."""

    def __init__(self, visibility_timeout: float = 30.0) -> None:
        self.lock = threading.RLock()
        self.visibility_timeout = visibility_timeout
        # moto (the real dev server's SQS) deletes with any handle ever issued; AWS may
        # answer 200 to an older handle and keep the message (see keep_on_stale_delete).
        self.stale_handles_delete = True
        self._ids = itertools.count(1)
        self.users: dict[int, User] = {}
        self.teams: dict[int, Team] = {}
        self.challenges: dict[int, Challenge] = {}
        self.phases: dict[int, Phase] = {}
        self.phase_splits: dict[int, PhaseSplit] = {}
        self.submissions: dict[int, Submission] = {}
        self.rows: dict[int, LeaderboardRow] = {}
        self.queues: dict[str, list[Message]] = {}
        self.media: dict[str, bytes] = {}
        self._counters: dict[str, itertools.count[int]] = {}

    def next_pk(self, kind: str) -> int:
        """Each model counts from 1, as a fresh database does."""
        return next(self._counters.setdefault(kind, itertools.count(1)))

    # ---- look-ups --------------------------------------------------------------------

    def user_by_jwt(self, token: str) -> User | None:
        return next((u for u in self.users.values() if u.jwt == token), None)

    def user_by_key(self, key: str) -> User | None:
        return next((u for u in self.users.values() if u.expiring_token == key), None)

    def challenge_by_queue(self, queue: str) -> Challenge | None:
        return next((c for c in self.challenges.values() if c.queue == queue), None)

    def team_of(self, user: int, challenge: Challenge) -> Team | None:
        return next((self.teams[t] for t in challenge.participant_teams
                     if user in self.teams[t].members), None)

    def is_host(self, user: int, challenge_pk: int) -> bool:
        challenge = self.challenges.get(challenge_pk)
        return challenge is not None and user in challenge.host_users

    def may_read(self, user: int, submission: Submission) -> bool:
        """The creator, their team, or a host of the challenge (§1.3)."""
        challenge = self.phases[submission.phase].challenge
        return (user == submission.created_by or user in self.teams[submission.team].members
                or self.is_host(user, challenge))

    # ---- media -----------------------------------------------------------------------

    def store_file(self, folder: str, name: str, data: bytes) -> str:
        """Stored as uuid4 + the original extension, the name itself is lost (§1.3)."""
        ext = name[name.rfind("."):] if "." in name.rsplit("/", 1)[-1] else ""
        path = f"{folder}/{uuid.uuid4()}{ext}"
        self.media[path] = data
        return path

    # ---- submissions and the queue ---------------------------------------------------

    def submit(self, user: int, phase_pk: int, data: bytes, filename: str, *,
               is_public: bool | None = None, metadata: Any = None,
               details: dict[str, str] | None = None) -> Submission:
        with self.lock:
            phase = self.phases[phase_pk]
            challenge = self.challenges[phase.challenge]
            team = self.team_of(user, challenge)
            if team is None:
                raise LookupError("user has no participant team in this challenge")
            pk = self.next_pk("submission")
            folder = f"submission_files/challenge_{challenge.pk}/phase_{phase.pk}/submission_{pk}"
            if is_public is None or not phase.leaderboard_public:
                is_public = phase.is_submission_public
            submission = Submission(
                pk=pk, phase=phase.pk, team=team.pk, created_by=user,
                input_file=self.store_file(folder, filename, data),
                submitted_at=dt.datetime.now(dt.UTC), is_public=is_public,
                submission_metadata=metadata, **(details or {}))
            self.submissions[pk] = submission
            # challenge and phase pks come from URL kwargs, so they are strings (§1.1)
            self.enqueue(challenge, {"challenge_pk": str(challenge.pk), "phase_pk": str(phase.pk),
                                     "is_static_dataset_code_upload_submission": False,
                                     "submission_pk": pk}, group=f"{phase.pk}-{team.pk}")
            return submission

    def enqueue(self, challenge: Challenge, body: dict[str, Any], group: str = "") -> None:
        with self.lock:
            self.queues.setdefault(challenge.queue, []).append(Message(body=body, group=group))

    def receive(self, queue: str) -> tuple[dict[str, Any], str] | None:
        """One short poll: at most one visible message, hidden again for the timeout."""
        with self.lock:
            now = time.monotonic()
            blocked: set[str] = set()  # FIFO: an in-flight message holds its group back
            for message in self.queues.get(queue, []):
                if message.deleted:
                    continue
                if queue.endswith(".fifo") and message.group in blocked:
                    continue
                if message.visible_at > now:
                    blocked.add(message.group)
                    continue
                handle = secrets.token_urlsafe(48)  # a NEW handle on every receive
                message.handles.append(handle)
                message.visible_at = now + self.visibility_timeout
                return message.body, handle
            return None

    def delete(self, queue: str, handle: str) -> bool:
        """True if the handle was ever issued. A stale one deletes too, as moto does, unless
        stale_handles_delete is off (AWS: the call succeeds, the message may stay)."""
        with self.lock:
            for message in self.queues.get(queue, []):
                if handle in message.handles:
                    if self.stale_handles_delete or handle == message.handles[-1]:
                        message.deleted = True
                    return True
            return False

    def make_visible(self, queue: str) -> None:
        """Every received message's visibility timeout ends now."""
        with self.lock:
            for message in self.queues.get(queue, []):
                message.visible_at = 0.0

    def pending(self, queue: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m.body for m in self.queues.get(queue, []) if not m.deleted]

    # ---- results ---------------------------------------------------------------------

    def save_rows(self, submission: Submission,
                  entries: list[tuple[PhaseSplit, dict[str, Any]]]) -> None:
        """Update the submission's enabled row per split in place, or create it (§1.6)."""
        for phase_split, accuracies in entries:
            row = next((r for r in self.rows.values() if r.submission == submission.pk
                        and r.phase_split == phase_split.pk and not r.is_disabled), None)
            if row is None:
                pk = self.next_pk("leaderboard_data")
                self.rows[pk] = LeaderboardRow(pk, submission.pk, phase_split.pk, accuracies)
            else:
                row.result = accuracies

    def leaderboard(self, phase_split: PhaseSplit, order_by: str | None) -> list[dict[str, Any]]:
        """The public entries in platform order (§1.8, §1.9)."""
        schema = phase_split.schema
        labels: list[str] = schema["labels"]
        key = order_by if order_by in labels else schema["default_order_by"]
        phase = self.phases[phase_split.phase]
        hosts = self.challenges[phase.challenge].host_users
        entries = []
        # newest result first (LeaderboardData by -created_at; a re-PUT updates a row in
        # place), then a stable sort: a tie on the key keeps the newest result on top
        for row in sorted(self.rows.values(), key=lambda r: r.pk, reverse=True):
            sub = self.submissions[row.submission]
            if (row.phase_split != phase_split.pk or row.is_disabled
                    or sub.status != "finished" or sub.is_flagged):
                continue
            if phase_split.visibility == 3 and not sub.is_public:
                continue
            if phase.is_public and sub.created_by in hosts and not sub.is_baseline:
                continue
            entries.append((row, sub))
        if not phase_split.show_leaderboard_by_latest_submission:
            meta = schema.get("metadata", {}).get(key, {})
            descending = (not meta["sort_ascending"] if "sort_ascending" in meta
                          else phase_split.is_leaderboard_order_descending)
            entries.sort(key=lambda e: e[0].result.get(key) or 0, reverse=descending)
        shown, taken = [], set()
        for row, sub in entries:
            team = self.teams[sub.team].name
            if team in taken:
                continue
            if not sub.is_baseline:
                taken.add(team)
            shown.append(self._row_json(row, sub, labels, key))
        return shown

    def _row_json(self, row: LeaderboardRow, sub: Submission, labels: list[str],
                  key: str) -> dict[str, Any]:
        return {
            "id": row.pk,
            "submission__participant_team": sub.team,
            "submission__participant_team__team_name": self.teams[sub.team].name,
            "submission__participant_team__team_url": "",
            "submission__is_baseline": sub.is_baseline,
            "submission__is_public": sub.is_public,
            "challenge_phase_split": row.phase_split,
            "result": [row.result.get(label, "#") for label in labels],
            "error": None,
            "leaderboard__schema": self.phase_splits[row.phase_split].schema,
            "submission__submitted_at": now_iso(sub.submitted_at),
            "submission__method_name": sub.method_name,
            "submission__id": sub.pk,
            "submission__submission_metadata": sub.submission_metadata,
            "submission__is_verified_by_host": False,
            "filtering_score": float(row.result.get(key) or 0),
            "filtering_error": 0,
        }
