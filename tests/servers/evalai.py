"""An EvalAI-compatible HTTP server on loopback, for tests (stdlib only).

    server = EvalAIServer().start()        # or the `evalai_server` pytest fixture
    world = server.add_default_challenge()  # the same shape as ../shared/evalai-real fixtures
    sub = server.submit(world.participants[0], world.phases["dev"], b"...", "answer.csv")
    server.fail("queue_receive", times=2)   # the next two queue GETs answer 503
    server.stop()

Endpoints, bodies and quirks follow ../shared/spec/evalai-api.md; the views are in
evalai_views.py, the data and the platform rules in evalai_state.py. Faults are opt-in
rules per route name (evalai_views.ROUTES): 5xx, slow answers, dropped connections,
truncated bodies, redirects. Throttling is off by default, as on the real server.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.servers.evalai_state import Challenge, Phase, PhaseSplit, State, Submission, Team, User
from tests.servers.evalai_views import (
    AuthFailed,
    Request,
    Response,
    Throttle,
    authenticate,
    resolve,
    throttled,
)
from tests.servers.http_handler import KeepAliveHandler

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = {
    "labels": ["Rank", "Weighted score", "Mean Q"],
    "default_order_by": "Rank",
    "metadata": {"Rank": {"sort_ascending": True}, "Weighted score": {"sort_ascending": True}},
}


@dataclass
class FaultRule:
    """What the next `times` requests of `route` get instead of (or on top of) the view."""

    route: str
    kind: str  # "status" | "slow" | "drop" | "truncate" | "redirect"
    times: int
    status: int = 503
    delay: float = 0.0
    location: str = ""


@dataclass
class World:
    """What add_default_challenge() created, mirroring the real fixtures.json."""

    host: User
    participants: list[User]
    teams: list[Team]
    challenge: Challenge
    phases: dict[str, Phase]
    phase_splits: dict[str, PhaseSplit]


@dataclass
class LoggedRequest:
    route: str | None
    method: str
    path: str
    status: int


@dataclass
class EvalAIServer:
    visibility_timeout: float = 30.0
    state: State = field(init=False)
    requests: list[LoggedRequest] = field(default_factory=list)
    throttle: Throttle | None = None  # switch on with enable_throttle()
    _faults: list[FaultRule] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self.state = State(self.visibility_timeout)

    # ---- life cycle ------------------------------------------------------------------

    def start(self) -> EvalAIServer:
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="evalai-test-server",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- building the world ----------------------------------------------------------

    def add_user(self, username: str, *, verified: bool = True) -> User:
        with self.state.lock:
            user = User(self.state.next_pk("user"), username, f"{username}@example.com",
                        verified=verified)
            self.state.users[user.pk] = user
            return user

    def add_team(self, name: str, *members: User) -> Team:
        with self.state.lock:
            team = Team(self.state.next_pk("team"), name, {m.pk for m in members})
            self.state.teams[team.pk] = team
            return team

    def add_challenge(self, queue: str, hosts: list[User], teams: list[Team],
                      title: str = "Probeboard remote test") -> Challenge:
        with self.state.lock:
            challenge = Challenge(self.state.next_pk("challenge"), title, queue,
                                  {h.pk for h in hosts}, {t.pk for t in teams})
            self.state.challenges[challenge.pk] = challenge
            return challenge

    def add_phase(self, challenge: Challenge, codename: str, name: str = "",
                  **options: Any) -> Phase:
        with self.state.lock:
            phase = Phase(self.state.next_pk("phase"), challenge.pk, codename,
                          name or f"{codename.title()} phase", **options)
            self.state.phases[phase.pk] = phase
            return phase

    def add_phase_split(self, phase: Phase, split: str = "test",
                        schema: dict[str, Any] | None = None, **options: Any) -> PhaseSplit:
        with self.state.lock:
            phase_split = PhaseSplit(self.state.next_pk("phase_split"), phase.pk, split,
                                     json.loads(json.dumps(schema or DEFAULT_SCHEMA)), **options)
            self.state.phase_splits[phase_split.pk] = phase_split
            return phase_split

    def add_default_challenge(self, queue: str = "probeboard-test") -> World:
        """host1, participant1/2 in probeboard-team-1/2, phases dev and final, split test."""
        host = self.add_user("host1")
        participants = [self.add_user(f"participant{i}") for i in (1, 2)]
        teams = [self.add_team(f"probeboard-team-{i}", p)
                 for i, p in enumerate(participants, start=1)]
        challenge = self.add_challenge(queue, [host], teams)
        phases = {c: self.add_phase(challenge, c) for c in ("dev", "final")}
        splits = {c: self.add_phase_split(p) for c, p in phases.items()}
        return World(host, participants, teams, challenge, phases, splits)

    # ---- acting as the platform ------------------------------------------------------

    def submit(self, user: User, phase: Phase, data: bytes, filename: str = "answer.csv",
               **options: Any) -> Submission:
        """What `evalai challenge C phase P submit --file F` leads to, message included."""
        return self.state.submit(user.pk, phase.pk, data, filename, metadata=[], **options)

    def requeue(self, submission: Submission) -> None:
        """A host's re-run or resume: the message carries int ids (§1.1)."""
        with self.state.lock:
            phase = self.state.phases[submission.phase]
            self.state.enqueue(self.state.challenges[phase.challenge], {
                "challenge_pk": phase.challenge, "phase_pk": phase.pk,
                "submission_pk": submission.pk,
                "is_static_dataset_code_upload_submission": False})

    def put_media(self, path: str, data: bytes) -> str:
        """Serve `data` at /media/<path> (no auth, as EvalAI's storage); return its URL."""
        with self.state.lock:
            self.state.media[path] = data
        return f"{self.url}/media/{path}"

    def submission(self, pk: int) -> Submission:
        with self.state.lock:
            return self.state.submissions[pk]

    def leaderboard(self, phase_split: PhaseSplit) -> list[dict[str, Any]]:
        with self.state.lock:
            return self.state.leaderboard(phase_split, None)

    def pending_messages(self, queue: str = "probeboard-test") -> list[dict[str, Any]]:
        return self.state.pending(queue)

    def expire_token(self, user: User) -> None:
        """Both of the user's tokens answer as expired from now on."""
        user.expired = True

    def set_visibility_timeout(self, seconds: float) -> None:
        self.state.visibility_timeout = seconds

    def make_visible(self, queue: str = "probeboard-test") -> None:
        """Time passes for the queue: received, undeleted messages come back now."""
        self.state.make_visible(queue)

    def keep_on_stale_delete(self) -> None:
        """AWS SQS rather than moto: a delete with a receipt handle older than the newest
        answers 200 and keeps the message (documented as possible; the spec, §1.2)."""
        self.state.stale_handles_delete = False

    def enable_throttle(self, limit: int = 60, period: float = 60.0) -> None:
        """Production's 60 requests/minute per user; the real dev server never throttles."""
        self.throttle = Throttle(limit, period)

    # ---- faults ----------------------------------------------------------------------

    def fail(self, route: str, times: int = 1, status: int = 503) -> None:
        self._add_fault(FaultRule(route, "status", times, status=status))

    def slow(self, route: str, seconds: float, times: int = 1) -> None:
        self._add_fault(FaultRule(route, "slow", times, delay=seconds))

    def drop(self, route: str, times: int = 1) -> None:
        """Close the connection without an answer."""
        self._add_fault(FaultRule(route, "drop", times))

    def truncate(self, route: str = "media", times: int = 1) -> None:
        """Announce the full Content-Length, send half the body, close."""
        self._add_fault(FaultRule(route, "truncate", times))

    def redirect(self, route: str, location: str, times: int = 1) -> None:
        self._add_fault(FaultRule(route, "redirect", times, location=location))

    def clear_faults(self) -> None:
        with self.state.lock:
            self._faults.clear()

    def _add_fault(self, rule: FaultRule) -> None:
        with self.state.lock:
            self._faults.append(rule)

    def take_fault(self, route: str) -> FaultRule | None:
        with self.state.lock:
            for rule in self._faults:
                if rule.route == route and rule.times > 0:
                    rule.times -= 1
                    return rule
            return None

    def calls(self, route: str) -> int:
        return sum(1 for r in self.requests if r.route == route)

    # ---- dispatch --------------------------------------------------------------------

    def handle(self, req: Request) -> tuple[Response, FaultRule | None, str | None]:
        found = resolve(req.method, req.path)
        if found is None:
            return Response(404, b"<h1>Not Found</h1>", content_type="text/html"), None, None
        if isinstance(found, str):
            return Response(301, b"", {"Location": found}, "text/html"), None, None
        route, args = found
        fault = self.take_fault(route.name)
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault and fault.kind == "status":
            return Response(fault.status, {"detail": "injected fault"}), fault, route.name
        if fault and fault.kind == "redirect":
            return Response(302, b"", {"Location": fault.location}, "text/html"), fault, route.name
        with self.state.lock:
            try:
                req.user = authenticate(self.state, req.headers.get("authorization"))
            except AuthFailed as failed:
                return failed.response, fault, route.name
            if route.auth and req.user is None:
                return (Response(401, {"detail": "Authentication credentials were not "
                                                 "provided."},
                                 {"WWW-Authenticate": 'Bearer realm="api"'}), fault, route.name)
            if route.auth and req.user is not None and not req.user.verified:
                return Response(403, {"detail": "Please verify your email!"}), fault, route.name
            if self.throttle and req.user is not None:
                wait = self.throttle.wait(req.user.pk)
                if wait is not None:
                    return throttled(wait), fault, route.name
            return route.view(self.state, req, *args), fault, route.name


class _Handler(KeepAliveHandler):
    app: EvalAIServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("evalai test server: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        req = Request(self.command, parts.path, dict(parse_qsl(parts.query)),
                      {k.lower(): v for k, v in self.headers.items()},
                      base_url=f"http://{self.headers.get('Host') or self.app.url}")
        _parse_body(req, self.headers.get("Content-Type", ""), raw)
        response, fault, route = self.app.handle(req)
        self.app.requests.append(LoggedRequest(route, req.method, req.path, response.status))
        if fault and fault.kind == "drop":
            self.close_connection = True
            return
        self._send(response, truncate=bool(fault and fault.kind == "truncate"))

    def _send(self, response: Response, truncate: bool) -> None:
        body = response.body
        if not isinstance(body, bytes):
            body = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body[: len(body) // 2] if truncate else body)
        if truncate:
            self.close_connection = True


def _parse_body(req: Request, content_type: str, raw: bytes) -> None:
    """Form, multipart or JSON, as DRF's parsers accept them."""
    if content_type.startswith("application/json") and raw:
        try:
            data = json.loads(raw)
        except ValueError:
            return
        req.form = data if isinstance(data, dict) else {}
    elif content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                req.files[str(name)] = (part.get_filename() or "", payload)
            else:
                req.form[str(name)] = payload.decode()
    elif raw:
        req.form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
