"""EvalAI REST client for the remote-evaluation worker (../shared/spec/evalai-api.md §1).

One requests.Session; every failure is a typed error from evaluator/support/errors.py: a
ServiceError that says whether a retry helps, a ServiceAuthError that tells the operator
which token to renew, a SubmissionError (participant-readable) for a file over the limit.
Transient failures (5xx, 429, timeouts, resets) are retried here with full-jitter backoff
within bounded attempts and time. The token is sent only in the Authorization header of
API calls: never to storage hosts, never in a log line or an exception message.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from evaluator.clients.retry import RetryPolicy, call_with_retries
from evaluator.support.errors import ServiceAuthError, ServiceError, SubmissionError

log = logging.getLogger(__name__)

SERVICE = "EvalAI"
CHUNK = 1 << 16
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class QueueMessage:
    """A received message; ids normalised to ints (new submissions carry strings)."""

    submission_pk: int
    challenge_pk: int
    phase_pk: int
    receipt_handle: str
    body: dict[str, Any]


class DeleteResult(enum.Enum):
    DELETED = "deleted"
    # EvalAI answered 500: a garbage handle or a boto error it could not serialise. The
    # message may or may not be gone: check the submission's status before acking again.
    MAYBE_GONE = "maybe gone"


@dataclass(frozen=True)
class _Answer:
    """Status and (redacted) detail of a probe's answer."""

    status_code: int
    detail: str


class EvalAIClient:
    def __init__(self, base_url: str, token: str, *, challenge_pk: int, queue: str,
                 token_source: str = "the EvalAI host token", scheme: str = "Bearer",
                 storage_hosts: Sequence[str] = (), policy: RetryPolicy | None = None,
                 timeout: float = 30.0) -> None:
        """`token_source` names where the operator configures the token (a config key or an
        environment variable): error messages point there. `storage_hosts` are the hosts
        `download` may fetch from ("host" or "host:port"); the API host is always one."""
        self.base_url = base_url.rstrip("/")
        self.challenge_pk = challenge_pk
        self.queue = queue
        self.token_source = token_source
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        api_host = urlsplit(self.base_url).hostname or ""
        self.storage_hosts = frozenset(h.lower() for h in (*storage_hosts, api_host))
        self._token = token
        self._auth = f"{scheme} {token}"
        self.session = requests.Session()

    def __repr__(self) -> str:
        return f"EvalAIClient({self.base_url!r}, challenge_pk={self.challenge_pk})"

    def close(self) -> None:
        self.session.close()

    # ---- worker calls ----------------------------------------------------------------

    def receive_message(self) -> QueueMessage | None:
        """The next visible queue message, or None when the queue is empty."""
        data = self._call("GET", f"/api/jobs/challenge/queues/{self.queue}/")
        body, handle = data.get("body"), data.get("receipt_handle")
        if not body or not handle:
            return None
        try:
            return QueueMessage(int(body["submission_pk"]), int(body["challenge_pk"]),
                                int(body["phase_pk"]), str(handle), dict(body))
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceError(SERVICE, f"queue message without usable ids: {body!r}",
                               retryable=False) from exc

    def delete_message(self, receipt_handle: str) -> DeleteResult:
        """Ack a message; use the newest handle (an older one may not delete on AWS)."""
        path = f"/api/jobs/queues/{self.queue}/"
        response = self._send("POST", path, data={"receipt_handle": receipt_handle},
                              pass_500=True)
        if response.status_code == 500:
            log.warning("EvalAI answered 500 to a message delete on queue %s: maybe gone",
                        self.queue)
            return DeleteResult.MAYBE_GONE
        return DeleteResult.DELETED

    def get_submission(self, pk: int) -> dict[str, Any]:
        return self._call("GET", f"/api/jobs/submission/{int(pk)}")  # no trailing slash

    def set_running(self, pk: int, job_name: str | None = None) -> dict[str, Any]:
        data = {"submission": str(pk), "submission_status": "RUNNING"}
        if job_name:
            data["job_name"] = job_name
        return self._call("PATCH", self._update_path, data=data)

    def set_finished(self, pk: int, phase_pk: int, results: Sequence[Mapping[str, Any]], *,
                     stdout: str = "", stderr: str = "",
                     metadata: Mapping[str, Any] | str | None = None) -> None:
        """PUT the final result: `results` is a list of {split, show_to_participant,
        accuracies}; `phase_pk` must be the submission's own phase (EvalAI does not check)."""
        data = {"submission": str(pk), "submission_status": "FINISHED",
                "challenge_phase": str(phase_pk), "result": result_json(results),
                "stdout": stdout, "stderr": stderr}
        if metadata is not None:
            data["metadata"] = metadata if isinstance(metadata, str) else json.dumps(metadata)
        self._call("PUT", self._update_path, data=data)

    def set_failed(self, pk: int, stderr: str, *, stdout: str = "") -> None:
        self._put_outcome(pk, "FAILED", stderr, stdout)

    def set_cancelled(self, pk: int, stderr: str, *, stdout: str = "") -> None:
        """Off every leaderboard (only finished entries are listed), for good: unlike the
        submission's visibility flags, the status is one its team cannot change back. A
        later PUT FINISHED lists it again (§1.6, no state guard)."""
        self._put_outcome(pk, "CANCELLED", stderr, stdout)

    def _put_outcome(self, pk: int, status: str, stderr: str, stdout: str) -> None:
        data = {"submission": str(pk), "submission_status": status, "stdout": stdout,
                "stderr": stderr}
        self._call("PUT", self._update_path, data=data)

    def set_baseline(self, pk: int, baseline: bool) -> dict[str, Any]:
        """A host's PATCH of the submission's is_baseline flag (update_submission_meta,
        §1.8): a baseline entry is listed without taking its team's slot."""
        path = (f"/api/jobs/challenges/{self.challenge_pk}/submissions/{int(pk)}"
                "/update_submission_meta/")
        return self._call("PATCH", path, data={"is_baseline": "true" if baseline else "false"})

    @property
    def _update_path(self) -> str:
        return f"/api/jobs/challenge/{self.challenge_pk}/update_submission/"

    # ---- checks without side effects (probeboard check-config) ------------------------

    def check_host(self) -> str:
        """Whether the token works and belongs to a host of the challenge. A PATCH naming
        no submission changes nothing: EvalAI checks the caller before the submission."""
        status, detail = self._probe("PATCH", self._update_path,
                                     {"submission_status": "running"})
        if status == 404:
            return f"token accepted ({self.token_source}), host of challenge {self.challenge_pk}"
        raise self._http_error("update_submission check", _Answer(status, detail))

    def check_queue(self) -> str:
        """Whether the queue exists, without receiving (which would hide a message for the
        visibility timeout): a delete with an empty handle is refused after the queue
        lookup, before anything is deleted."""
        status, detail = self._probe("POST", f"/api/jobs/queues/{self.queue}/",
                                     {"receipt_handle": ""})
        if status == 400 and "receipt handle" in detail:
            return f"queue {self.queue} exists"
        if status == 400 and "does not exist" in detail:
            raise ServiceError(SERVICE, f"queue {self.queue!r} does not exist on challenge "
                               f"{self.challenge_pk}; copy the queue name from the "
                               "challenge's settings", retryable=False, status=status)
        raise self._http_error("queue check", _Answer(status, detail))

    def _probe(self, method: str, path: str, data: dict[str, str]) -> tuple[int, str]:
        try:
            response = self.session.request(method, self.base_url + path, data=data,
                                            headers={"Authorization": self._auth},
                                            timeout=self.timeout)
        except requests.RequestException as exc:
            raise _network_error(f"{method} {_path_only(path)}", self.base_url, exc) from None
        return response.status_code, self._redact(_detail(response))

    # ---- the participant's file ------------------------------------------------------

    def download(self, url: str, dest: str | os.PathLike[str], max_bytes: int,
                 timeout: float) -> int:
        """Stream `url` to `dest` (atomically); return its size. At most `max_bytes`
        (SubmissionError past it) within `timeout` seconds per try, from a storage host
        only, redirects checked hop by hop. No token is sent."""
        dest = Path(dest)
        return call_with_retries(lambda: self._download_once(url, dest, max_bytes, timeout),
                                 self.policy, "download of a submission file")

    def _download_once(self, url: str, dest: Path, max_bytes: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        for _ in range(MAX_REDIRECTS + 1):
            self._check_storage_url(url)
            response = self._get_stream(url, deadline, timeout)
            if response.status_code in REDIRECTS and "Location" in response.headers:
                response.close()
                url = urljoin(url, response.headers["Location"])
                continue
            with response:
                return self._save(response, url, dest, max_bytes, deadline, timeout)
        raise ServiceError(SERVICE, f"more than {MAX_REDIRECTS} redirects for a submission file",
                           retryable=False)

    def _check_storage_url(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        where = f"{host}:{parts.port}" if parts.port else host
        if parts.scheme not in ("http", "https"):
            raise ServiceError(SERVICE, f"submission file URL has scheme {parts.scheme!r}; "
                               "only http and https are fetched", retryable=False)
        if host not in self.storage_hosts and where not in self.storage_hosts:
            raise ServiceError(SERVICE, f"refused to fetch a submission file from {where!r}: "
                               "not a configured storage host "
                               f"({', '.join(sorted(self.storage_hosts))})", retryable=False)

    def _get_stream(self, url: str, deadline: float, timeout: float) -> requests.Response:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ServiceError(SERVICE, f"download did not finish within {timeout:g} s",
                               retryable=True)
        try:
            return self.session.get(url, stream=True, allow_redirects=False,
                                    timeout=min(left, self.timeout))
        except requests.RequestException as exc:
            raise _network_error("download", _safe_url(url), exc) from None

    def _save(self, response: requests.Response, url: str, dest: Path, max_bytes: int,
              deadline: float, timeout: float) -> int:
        if response.status_code != 200:
            raise _status_error(f"download of {_safe_url(url)}", response.status_code,
                                response)
        announced = _content_length(response)
        if announced is not None and announced > max_bytes:
            raise _too_large(max_bytes)
        part = dest.with_name(dest.name + ".part")
        written = 0
        try:
            with part.open("wb") as out:
                for chunk in response.iter_content(CHUNK):
                    if written + len(chunk) > max_bytes:
                        raise _too_large(max_bytes)
                    if time.monotonic() > deadline:
                        raise ServiceError(SERVICE, f"download did not finish within "
                                                    f"{timeout:g} s", retryable=True)
                    out.write(chunk)
                    written += len(chunk)
            if announced is not None and written != announced:
                raise _truncated(written, announced)
            os.replace(part, dest)
        except requests.RequestException as exc:
            part.unlink(missing_ok=True)
            raise _truncated(written, announced) from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        log.info("downloaded %d bytes from %s", written, urlsplit(url).hostname)
        return written

    # ---- plumbing --------------------------------------------------------------------

    def _call(self, method: str, path: str, *, data: dict[str, str] | None = None,
              auth: bool = True) -> Any:
        response = self._send(method, path, data=data, auth=auth)
        try:
            return response.json()
        except ValueError:
            raise ServiceError(SERVICE, f"{method} {_path_only(path)} answered "
                               f"{response.status_code} without JSON", retryable=True,
                               status=response.status_code) from None

    def _send(self, method: str, path: str, *, data: dict[str, str] | None = None,
              auth: bool = True, pass_500: bool = False) -> requests.Response:
        what = f"{method} {_path_only(path)}"
        headers = {"Authorization": self._auth} if auth else {}

        def attempt() -> requests.Response:
            try:
                response = self.session.request(method, self.base_url + path, data=data,
                                                headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                raise _network_error(what, self.base_url, exc) from None
            if response.status_code < 400 or (pass_500 and response.status_code == 500):
                return response
            raise self._http_error(what, response)

        return call_with_retries(attempt, self.policy, f"EvalAI {what}")

    def _http_error(self, what: str, response: requests.Response | _Answer) -> ServiceError:
        status = response.status_code
        detail = (response.detail if isinstance(response, _Answer)
                  else self._redact(_detail(response)))
        if status == 401 and "not authorized" not in detail:
            return ServiceAuthError(SERVICE, f"{what} refused {self.token_source} ({status}: "
                                    f"{detail}); renew it (EvalAI profile page, 'Get your Auth "
                                    f"Token') and set it in {self.token_source}", status=status)
        if (status in (401, 400) and "not authorized" in detail) or status == 403:
            return ServiceAuthError(SERVICE, f"{what}: the account of {self.token_source} may "
                                    f"not do this ({status}: {detail}); use a token of a host "
                                    f"of challenge {self.challenge_pk}", status=status)
        return _status_error(what, status, response, detail)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


# ---- helpers (module level: they never see the token) ----------------------------------


def result_json(results: Sequence[Mapping[str, Any]]) -> str:
    """The `result` form field: a JSON string of the split entries, checked here because
    EvalAI answers some malformed shapes with a bare 500."""
    entries = []
    for entry in results:
        split, accuracies = entry.get("split"), entry.get("accuracies")
        if not isinstance(split, str) or not split:
            raise ValueError(f"result entry without a split codename: {entry!r}")
        if not isinstance(accuracies, Mapping):
            raise ValueError(f"result entry for split {split!r} without accuracies")
        for label, value in accuracies.items():
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise ValueError(f"split {split!r}: {label!r} is {value!r}, not a finite number")
        entries.append({"split": split,
                        "show_to_participant": bool(entry.get("show_to_participant", True)),
                        "accuracies": dict(accuracies)})
    return json.dumps(entries, allow_nan=False)


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"non-JSON answer ({response.headers.get('Content-Type', 'no type')})"
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)[:300]
    return str(body)[:300]


def _status_error(what: str, status: int, response: requests.Response | _Answer,
                  detail: str | None = None) -> ServiceError:
    retry_after = (_retry_after(response) if status == 429
                   and isinstance(response, requests.Response) else None)
    if detail is None:
        assert isinstance(response, requests.Response)
        detail = _detail(response)
    return ServiceError(SERVICE, f"{what} answered {status}: {detail}",
                        retryable=status >= 500 or status == 429, status=status,
                        retry_after=retry_after)


def _network_error(what: str, where: str, exc: requests.RequestException) -> ServiceError:
    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
    return ServiceError(SERVICE, f"{what} to {where}: {kind} ({type(exc).__name__})",
                        retryable=True)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _content_length(response: requests.Response) -> int | None:
    if response.headers.get("Content-Encoding"):
        return None  # the header counts encoded bytes; iter_content yields decoded ones
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _too_large(limit: int) -> SubmissionError:
    return SubmissionError("file_too_large", f"The submitted file is larger than the "
                           f"{_size(limit)} limit for submission files. Make it smaller "
                           "(one row per sample, only the expected columns) and submit again.")


def _truncated(written: int, announced: int | None) -> ServiceError:
    total = f"{announced} announced" if announced is not None else "length unknown"
    return ServiceError(SERVICE, f"download of the submission file was cut off after "
                        f"{written} bytes ({total})", retryable=True)


def _size(count: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]


def _safe_url(url: str) -> str:
    """Scheme, host and path: a query may hold a storage signature."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
