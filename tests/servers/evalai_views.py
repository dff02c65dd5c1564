"""The endpoints of the EvalAI-compatible test server: one function per view, answering
with the status codes and bodies ../shared/spec/evalai-api.md marks as seen on the real
server (typos in its messages included, since clients may match on them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.servers.evalai_state import Phase, PhaseSplit, State, Submission, User, now_iso

NOT_AUTHORIZED_RESOURCE = "Sorry, you are not authorized to access this resource"
NOT_AUTHORIZED_REQUEST = "Sorry, you are not authorized to make this request!"
JWT_INVALID = {
    "detail": "Given token not valid for any token type", "code": "token_not_valid",
    "messages": [{"token_class": "RefreshToken", "token_type": "refresh",
                  "message": "Token is invalid or expired"}],
}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    form: dict[str, Any] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    base_url: str = ""
    user: User | None = None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def error(status: int, message: str, key: str = "error") -> Response:
    return Response(status, {key: message})


def server_error(text: str) -> Response:
    """Where the real view raises: Django's DEBUG page, HTML, not JSON."""
    return Response(500, f"<html><body><h1>Server Error (500)</h1><pre>{text}</pre>"
                         "</body></html>".encode(), content_type="text/html")


NOT_FOUND_HTML = Response(404, b"<html><body><h1>Not Found</h1></body></html>",
                          content_type="text/html")


# ---- authentication (DRF: JWTAuthentication, then ExpiringTokenAuthentication) -------


class AuthFailed(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _auth401(body: dict[str, Any]) -> AuthFailed:
    return AuthFailed(Response(401, body, {"WWW-Authenticate": 'Bearer realm="api"'}))


def authenticate(state: State, header: str | None) -> User | None:
    """The user the header names, None without credentials; raises AuthFailed."""
    parts = (header or "").split()
    if not parts:
        return None
    if parts[0] == "Bearer":  # the JWT scheme word is case-sensitive
        if len(parts) != 2:
            raise _auth401({"detail": "Authorization header must contain two space-delimited "
                                      "values", "code": "bad_authorization_header"})
        user = state.user_by_jwt(parts[1])
        if user is None or user.expired:
            raise _auth401(JWT_INVALID)
        return user
    if parts[0].lower() == "token":  # DRF's TokenAuthentication compares case-insensitively
        if len(parts) == 1:
            raise _auth401({"detail": "Invalid token header. No credentials provided."})
        if len(parts) > 2:
            raise _auth401({"detail": "Invalid token header. Token string should not "
                                      "contain spaces."})
        user = state.user_by_key(parts[1])
        if user is None:
            raise _auth401({"detail": "Invalid token"})
        if user.expired:
            raise _auth401({"detail": "Token has expired"})
        return user
    return None  # `bearer x`, `JWT x`: no authenticator claims it


# ---- helpers -------------------------------------------------------------------------


def _submission_json(state: State, sub: Submission, base_url: str, host_view: bool
                     ) -> dict[str, Any]:
    def url(path: str | None) -> str | None:
        return f"{base_url}/media/{path}" if path else None

    if sub.started_at and sub.completed_at:
        execution_time: Any = (sub.completed_at - sub.started_at).total_seconds()
    else:
        execution_time = "None"
    data = {
        "id": sub.pk, "participant_team": sub.team,
        "participant_team_name": state.teams[sub.team].name,
        "execution_time": execution_time, "challenge_phase": sub.phase,
        "created_by": sub.created_by, "status": sub.status, "input_file": url(sub.input_file),
        "submission_input_file": None, "stdout_file": url(sub.stdout_file),
        "stderr_file": url(sub.stderr_file),
        "environment_log_file": url(sub.environment_log_file),
        "started_at": now_iso(sub.started_at) if sub.started_at else None,
        "completed_at": now_iso(sub.completed_at) if sub.completed_at else None,
        "submitted_at": now_iso(sub.submitted_at), "rerun_resumed_at": None,
        "method_name": sub.method_name, "method_description": sub.method_description,
        "project_url": sub.project_url, "publication_url": sub.publication_url,
        "is_public": sub.is_public, "is_flagged": sub.is_flagged,
        "ignore_submission": sub.ignore_submission,
        "submission_result_file": url(sub.result_file), "when_made_public": None,
        "is_baseline": sub.is_baseline, "job_name": list(sub.job_name),
        "submission_metadata": sub.submission_metadata, "is_verified_by_host": False,
    }
    if not host_view:
        del data["environment_log_file"]
    return data


def _phase_json(phase: Phase) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return {
        "id": phase.pk, "name": phase.name, "description": f"{phase.name} (test server)",
        "leaderboard_public": phase.leaderboard_public, "start_date": now_iso(start),
        "end_date": now_iso(start + dt.timedelta(days=366)), "challenge": phase.challenge,
        "is_public": phase.is_public, "is_active": True, "codename": phase.codename,
        "max_submissions_per_day": 100000, "max_submissions_per_month": 100000,
        "max_submissions": 100000, "submission_artifact_retention_policy": "keep_forever",
        "max_concurrent_submissions_allowed": 1000,
        "is_restricted_to_select_one_submission": False,
        "is_partial_submission_evaluation_enabled": False,
        "is_submission_public": phase.is_submission_public,
        "submission_meta_attributes": phase.submission_meta_attributes,
        "allowed_email_ids": [], "disable_logs": False, "is_submission_paused": False,
        "allowed_submission_file_types": ".json, .zip, .txt, .tsv, .gz, .csv, .h5, .npy",
        "default_submission_meta_attributes": None, "slug": None,
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _type_repr(value: Any) -> str:
    return f"<class '{type(value).__name__}'>"


# ---- worker endpoints ----------------------------------------------------------------


def queue_receive(state: State, req: Request, queue: str) -> Response:
    challenge = state.challenge_by_queue(queue)
    if challenge is None:
        return error(400, f"Challenge with queue name {queue} does not exist")
    if req.user is None or req.user.pk not in challenge.host_users:
        return error(401, NOT_AUTHORIZED_RESOURCE)
    got = state.receive(queue)
    body, handle = got if got else (None, None)
    return Response(200, {"body": body, "receipt_handle": handle})


def queue_delete(state: State, req: Request, queue: str) -> Response:
    challenge = state.challenge_by_queue(queue)
    if challenge is None:
        return error(400, f"Challenge with queue name {queue} does not exists")
    if "receipt_handle" not in req.form:
        return server_error("KeyError: 'receipt_handle'")
    handle = req.form["receipt_handle"]
    if not handle:
        return error(400, "Please add message receipt handle in the body")
    if req.user is None or req.user.pk not in challenge.host_users:
        return error(401, NOT_AUTHORIZED_RESOURCE)
    if not state.delete(queue, str(handle)):
        # the view puts boto's ClientError into its JSON and cannot serialise it
        return server_error("TypeError: Object of type ClientError is not JSON serializable")
    return Response(200, {"success": f"Message deleted successfully from the queue: {queue}"})


def submission_detail(state: State, req: Request, pk: str) -> Response:
    sub = state.submissions.get(int(pk))
    if sub is None:
        return error(404, f"Submission {pk} does not exist")
    assert req.user is not None
    if not state.may_read(req.user.pk, sub):
        return error(401, "Sorry, you are not authorized to access this submission.")
    if req.method == "DELETE":
        sub.ignore_submission = True
    host = state.is_host(req.user.pk, state.phases[sub.phase].challenge)
    return Response(200, _submission_json(state, sub, req.base_url, host))


def phase_detail(state: State, req: Request, pk: str) -> Response:
    phase = state.phases.get(int(pk))
    if phase is None:
        return error(404, f"ChallengePhase {pk} does not exist", key="detail")
    return Response(200, _phase_json(phase))


def update_submission(state: State, req: Request, challenge_pk: str) -> Response:
    assert req.user is not None
    if not state.is_host(req.user.pk, int(challenge_pk)):
        return error(400, NOT_AUTHORIZED_REQUEST)  # 400, not 401, unlike the queue
    pk = req.form.get("submission")
    sub = state.submissions.get(_int(pk) or -1)
    if sub is None:
        return error(404, f"Submission {pk} does not exist", key="detail")
    status = str(req.form.get("submission_status", "")).lower()
    if req.method == "PATCH":
        if status not in ("queued", "running"):
            return error(400, "Sorry, submission status is invalid")
        sub.status = status
        sub.history.append(status)
        sub.started_at = dt.datetime.now(dt.UTC)
        if job := str(req.form.get("job_name", "")).lower():
            sub.job_name.append(job)
        return Response(200, _submission_json(state, sub, req.base_url, True))
    if status not in ("finished", "failed", "cancelled"):
        return error(400, "Sorry, submission status is invalid")
    texts = {}
    for name in ("stdout", "stderr", "environment_log"):
        value = req.form.get(name, "")
        if not isinstance(value, str):
            return server_error(f"TypeError: {name} must be a string")
        texts[name] = value
    public_results: list[dict[str, Any]] = []
    if status == "finished":
        checked = _check_result(state, req.form.get("result", ""),
                                req.form.get("challenge_phase"))
        if isinstance(checked, Response):
            return checked
        state.save_rows(sub, [(split, acc) for split, acc, _ in checked])
        public_results = [acc for _, acc, show in checked if show]
    folder = sub.input_file.rsplit("/", 1)[0]
    sub.stdout_file = state.store_file(folder, "stdout.txt", texts["stdout"].encode())
    sub.stderr_file = state.store_file(folder, "stderr.txt", texts["stderr"].encode())
    sub.environment_log_file = state.store_file(
        folder, "environment_log.txt", texts["environment_log"].encode())
    sub.result_file = state.store_file(folder, "submission_result_file.json",
                                       repr(public_results).encode())
    sub.metadata_file = state.store_file(folder, "submission_metadata_file.json",
                                         str(req.form.get("metadata", "")).encode())
    sub.status = status
    sub.history.append(status)
    sub.completed_at = dt.datetime.now(dt.UTC)
    return Response(200, {"success": "Submission result has been successfully updated"})


# DRF 3.10's BooleanField: what a field may say for true and for false (1 == True).
TRUE_VALUES = {"t", "T", "y", "Y", "yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
               "1", True}
FALSE_VALUES = {"f", "F", "n", "N", "no", "NO", "false", "False", "FALSE", "off", "Off",
                "OFF", "0", False}
META_FLAGS = ("is_baseline", "is_public")
META_TEXTS = ("method_name", "method_description", "project_url", "publication_url")


def update_submission_meta(state: State, req: Request, challenge_pk: str,
                           submission_pk: str) -> Response:
    """A partial update of the submission's serializer fields (§1.8): a host may change
    any submission (of any challenge: the view does not check), a participant only their
    own team's; unknown fields are ignored, a bad boolean is a 400 naming the field."""
    assert req.user is not None
    sub = state.submissions.get(int(submission_pk))
    host = state.is_host(req.user.pk, int(challenge_pk))
    if sub is None and host:
        return error(404, f"Submission {submission_pk} does not exist", key="detail")
    challenge = state.challenges.get(int(challenge_pk))
    team = state.team_of(req.user.pk, challenge) if challenge is not None else None
    if sub is None or not (host or (team is not None and sub.team == team.pk)):
        return error(404, f"Submission {submission_pk} does not exist")
    changes: dict[str, Any] = {}
    for name in META_FLAGS:
        if name in req.form:
            value = req.form[name]
            if (not isinstance(value, str | int | float)
                    or (value not in TRUE_VALUES and value not in FALSE_VALUES)):
                return Response(400, {name: ["Must be a valid boolean."]})
            changes[name] = value in TRUE_VALUES
    changes.update({name: str(req.form[name]) for name in META_TEXTS if name in req.form})
    for name, value in changes.items():
        setattr(sub, name, value)
    return Response(200, _submission_json(state, sub, req.base_url, host))


def _check_result(state: State, raw: Any, phase_pk: Any
                  ) -> list[tuple[PhaseSplit, dict[str, Any], bool]] | Response:
    """Every split entry checked before anything is saved, with the real messages."""
    try:
        results = json.loads(raw)
    except (ValueError, TypeError) as exc:
        return error(400, f"`result` key contains invalid data with error {exc}."
                          "Please try again with correct format.")
    if not isinstance(results, list):
        return server_error("AttributeError: 'str' object has no attribute 'get'")
    checked = []
    for entry in results:
        if not isinstance(entry, dict):
            return server_error(f"AttributeError: {type(entry).__name__} has no 'get'")
        split, accuracies = entry.get("split"), entry.get("accuracies")
        phase_split = next((s for s in state.phase_splits.values()
                            if str(s.phase) == str(phase_pk) and s.split == split), None)
        if phase_split is None:
            return error(400, f"Challenge Phase Split does not exist with phase_id: {phase_pk} "
                              f"andsplit codename: {split}")
        if not isinstance(accuracies, dict):
            return server_error("AttributeError: 'NoneType' object has no attribute 'items'")
        labels = phase_split.schema["labels"]
        unknown = [m for m in accuracies if m not in labels]
        if unknown:
            return error(400, f"Following metrics are missing in theleaderboard data: {unknown}")
        malformed = [(m, v) for m, v in accuracies.items()
                     if not isinstance(v, int | float)]
        if malformed:
            shown = ", ".join(f"({m!r}, {_type_repr(v)})" for m, v in malformed)
            return error(400, f"Values for following metrics are not offloat/int: [{shown}]")
        checked.append((phase_split, accuracies, bool(entry.get("show_to_participant", False))))
    return checked


def leaderboard(state: State, req: Request, pk: str) -> Response:
    phase_split = state.phase_splits.get(int(pk))
    if phase_split is None:
        return error(400, "Challenge Phase Split does not exist", key="detail")
    entries = state.leaderboard(phase_split, req.query.get("order_by"))
    size = max(1, _int(req.query.get("page_size")) or 50)
    page = max(1, _int(req.query.get("page")) or 1)
    pages = max(1, math.ceil(len(entries) / size))
    url = f"{req.base_url}{req.path}?page={{}}&page_size={size}"
    return Response(200, {
        "count": len(entries),
        "next": url.format(page + 1) if page < pages else None,
        "previous": url.format(page - 1) if page > 1 else None,
        "results": entries[(page - 1) * size: page * size],
    })


# ---- participant (CLI) endpoints -----------------------------------------------------


def challenge_phase(state: State, req: Request, challenge_pk: str, pk: str) -> Response:
    phase = state.phases.get(int(pk))
    if phase is None or phase.challenge != int(challenge_pk):
        return error(404, "Challenge phase does not exist", key="detail")
    return Response(200, _phase_json(phase))


def submit(state: State, req: Request, challenge_pk: str, phase_pk: str) -> Response:
    assert req.user is not None
    phase = state.phases.get(int(phase_pk))
    if phase is None or phase.challenge != int(challenge_pk):
        return error(404, "Challenge phase does not exist", key="detail")
    challenge = state.challenges[phase.challenge]
    if req.method == "GET":  # `evalai challenge C phase P submissions`
        team = state.team_of(req.user.pk, challenge)
        subs = [s for s in state.submissions.values()
                if s.phase == phase.pk and team is not None and s.team == team.pk]
        return Response(200, {"count": len(subs), "next": None, "previous": None, "results": [
            _submission_json(state, s, req.base_url, False) for s in reversed(subs)]})
    if state.team_of(req.user.pk, challenge) is None:
        return error(400, "You haven't participated in the challenge")
    if "input_file" not in req.files:
        return error(400, "input_file: No file was submitted.")
    name, data = req.files["input_file"]
    visibility = req.form.get("is_public")
    metadata = req.form.get("submission_metadata")
    with contextlib.suppress(ValueError):
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    details = {k: str(req.form[k]) for k in ("method_name", "method_description",
                                             "project_url", "publication_url") if k in req.form}
    sub = state.submit(req.user.pk, phase.pk, data, name,
                       is_public=None if visibility is None else visibility == "true",
                       metadata=metadata, details=details)
    return Response(201, _submission_json(state, sub, req.base_url, False))


def media(state: State, req: Request, path: str) -> Response:
    data = state.media.get(path)
    if data is None:
        return NOT_FOUND_HTML
    return Response(200, data, content_type="application/octet-stream")


def login(state: State, req: Request) -> Response:
    user = next((u for u in state.users.values()
                 if u.username == req.form.get("username")
                 and u.password == req.form.get("password")), None)
    if user is None:
        return error(400, "Unable to log in with provided credentials.",
                     key="non_field_errors")
    return Response(200, {"token": user.expiring_token})


def auth_token(state: State, req: Request) -> Response:
    assert req.user is not None
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    return Response(200, {"token": req.user.jwt, "expires_at": now_iso(expires)})


View = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    name: str  # what fault rules and the request log refer to
    methods: frozenset[str]
    pattern: re.Pattern[str]
    view: View
    auth: bool = True  # IsAuthenticated (+ verified email)


def _route(name: str, methods: str, pattern: str, view: View, auth: bool = True) -> Route:
    return Route(name, frozenset(methods.split()), re.compile(pattern), view, auth)


ROUTES = [
    _route("queue_receive", "GET", r"^/api/jobs/challenge/queues/([\w.-]+)/$", queue_receive),
    _route("queue_delete", "POST", r"^/api/jobs/queues/([\w.-]+)/$", queue_delete),
    _route("submission", "GET DELETE", r"^/api/jobs/submission/(\d+)$", submission_detail),
    _route("phase", "GET", r"^/api/challenges/challenge/phase/(\d+)/$", phase_detail, False),
    _route("update_submission", "PATCH PUT",
           r"^/api/jobs/challenge/(\d+)/update_submission/$", update_submission),
    _route("update_submission_meta", "PATCH",
           r"^/api/jobs/challenges/(\d+)/submissions/(\d+)/update_submission_meta/$",
           update_submission_meta),
    _route("leaderboard", "GET", r"^/api/jobs/challenge_phase_split/(\d+)/leaderboard/$",
           leaderboard, False),
    _route("challenge_phase", "GET",
           r"^/api/challenges/challenge/(\d+)/challenge_phase/(\d+)/?$", challenge_phase, False),
    _route("submit", "GET POST",
           r"^/api/jobs/challenge/(\d+)/challenge_phase/(\d+)/submission/$", submit),
    _route("media", "GET", r"^/media/(.+)$", media, False),
    _route("login", "POST", r"^/api/auth/login$", login, False),
    _route("auth_token", "GET", r"^/api/accounts/user/get_auth_token$", auth_token),
]


def resolve(method: str, path: str) -> tuple[Route, tuple[str, ...]] | str | None:
    """The route and its arguments; a str is Django's APPEND_SLASH redirect target."""
    for route in ROUTES:
        match = route.pattern.match(path)
        if match and method in route.methods:
            return route, match.groups()
    if not path.endswith("/") and method in ("GET", "HEAD") and resolve(method, path + "/"):
        return path + "/"
    return None


@dataclass
class Throttle:
    """DRF's UserRateThrottle: `limit` requests per `period` seconds per user."""

    limit: int = 60
    period: float = 60.0
    history: dict[int, list[float]] = field(default_factory=dict)

    def wait(self, user: int) -> float | None:
        now = time.monotonic()
        seen = [t for t in self.history.get(user, []) if t > now - self.period]
        if len(seen) >= self.limit:
            self.history[user] = seen
            return self.period - (now - seen[0])
        self.history[user] = [*seen, now]
        return None


def throttled(wait: float) -> Response:
    seconds = math.ceil(wait)
    return Response(429, {"detail": f"Request was throttled. Expected available in "
                                    f"{seconds} seconds."}, {"Retry-After": str(seconds)})
