"""Publish the leaderboard files and the README table to GitHub as ONE atomic commit.

Git Data API flow (docs: spec/github-api.md, "Atomic multi-file commit"): read the branch
head, upload a blob for each file whose content differs from the head's, build one tree on
the head's tree, one commit on the head, then move the branch without force. The
non-force ref update is a compare-and-swap: when someone else moved the branch meanwhile
GitHub answers 422 "not a fast forward", and we rebuild on the new head (re-reading its
README, so their edits outside the markers are kept) a bounded number of times.

Publishing identical content makes no commit and no write at all, so an outbox that repeats
a publication after a crash shows nothing twice.

PyGithub's own retries are off (`retry=None`): the daemon's outbox retries with backoff and
reads `ServiceError.retryable` / `retry_after`. PyGithub's default would sleep inside the
worker until a rate limit resets (up to an hour) and never retries the ref PATCH anyway.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import posixpath
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from github import Auth, Github, GithubException, InputGitTreeElement
from github.GitCommit import GitCommit
from github.Repository import Repository

from evaluator.support.crashpoints import crash_point
from evaluator.support.errors import ConfigError, ServiceAuthError, ServiceError

log = logging.getLogger(__name__)

SERVICE = "GitHub"
DEFAULT_BASE_URL = "https://api.github.com"
FILE_MODE = "100644"


@dataclass(frozen=True)
class GitHubTarget:
    """Where the board goes. `folder` is a path inside the repository ("" = its root) that
    the published files are relative to; `readme` is relative to the repository root."""

    repo: str  # "owner/name"
    branch: str = "main"
    folder: str = ""
    readme: str = "README.md"


def git_blob_sha(data: bytes) -> str:
    """The SHA git (and GitHub) gives a file's content: lets us skip unchanged files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _BranchMoved(Exception):
    """Our ref update was not a fast forward: someone committed in between."""


class GitHubPublisher:
    """One authenticated client; `publish` is safe to repeat (see module docstring).

    `base_url` is `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise
    (any http(s)://host:port/prefix works: PyGithub takes scheme, host, port and path prefix
    from it). `token_setting` names the setting holding the token, for error messages.
    """

    def __init__(self, token: str, *, base_url: str = DEFAULT_BASE_URL,
                 token_setting: str = "github.token", timeout: int = 15,
                 seconds_between_writes: float | None = 1.0, max_attempts: int = 3) -> None:
        self.token_setting = token_setting
        self.max_attempts = max_attempts
        # seconds_between_writes: GitHub asks integrators to space content-creating requests
        # about 1 s apart to stay clear of secondary rate limits; tests pass None.
        self._github = Github(auth=Auth.Token(token), base_url=base_url, timeout=timeout,
                              retry=None, seconds_between_requests=None,
                              seconds_between_writes=seconds_between_writes)

    def close(self) -> None:
        self._github.close()

    def check_writable(self, target: GitHubTarget) -> str:
        """Reads only: the repository and branch exist and the token may push to them."""
        try:
            repo = self._github.get_repo(target.repo)
            repo.get_git_ref(f"heads/{target.branch}")
            permissions = repo.raw_data.get("permissions") or {}
        except GithubException as error:
            raise self._service_error(error, target) from error
        except requests.RequestException as error:
            raise ServiceError(SERVICE, f"no answer from {target.repo}: "
                               f"{type(error).__name__}", retryable=True) from None
        if not permissions.get("push"):
            raise ServiceAuthError(SERVICE, f"the token in {self.token_setting} may read "
                                   f"{target.repo} but not push to it; give it write access "
                                   "to the repository's contents")
        return f"{target.repo}@{target.branch} exists and the token may push to it"

    def publish(self, target: GitHubTarget, files: Mapping[str, bytes],
                update_readme: Callable[[str], str], message: str) -> str | None:
        """Commit `files` (paths relative to `target.folder`) and the README that
        `update_readme(current README text)` returns, in one commit on `target.branch`.

        Returns the new commit's sha, or None when the branch already holds this content.
        Raises ServiceAuthError (token refused), ServiceError (`retryable` says whether the
        outbox should try again) or ConfigError (bad paths, README without markers)."""
        wanted = _repo_paths(target, files)
        try:
            repo = self._github.get_repo(target.repo)
            for attempt in range(1, self.max_attempts + 1):
                try:
                    return self._publish_once(repo, target, wanted, update_readme, message)
                except _BranchMoved:
                    log.info("GitHub: %s@%s moved while publishing (attempt %d/%d); "
                             "rebuilding on the new head", target.repo, target.branch,
                             attempt, self.max_attempts)
            raise ServiceError(
                SERVICE, f"{target.repo}@{target.branch} kept moving while we published "
                f"({self.max_attempts} attempts); another writer is busy, try again later",
                retryable=True, status=422)
        except GithubException as error:
            raise self._service_error(error, target) from error
        except requests.RequestException as error:
            raise ServiceError(SERVICE, f"no answer while publishing to {target.repo} "
                               f"({type(error).__name__}); will retry",
                               retryable=True) from error

    # ---- one attempt

    def _publish_once(self, repo: Repository, target: GitHubTarget,
                      wanted: dict[str, bytes], update_readme: Callable[[str], str],
                      message: str) -> str | None:
        ref = repo.get_git_ref(f"heads/{target.branch}")  # lazy=False: one GET, plural url
        head = repo.get_git_commit(ref.object.sha)
        listing = repo.get_git_tree(head.tree.sha, recursive=True)
        # A truncated listing (over ~100k entries) is incomplete: then upload everything.
        known = {} if listing.truncated else {
            e.path: e.sha for e in listing.tree if e.type == "blob"}
        try:  # UnicodeDecodeError is a ValueError too: a README that is not UTF-8
            new_readme = update_readme(self._readme(repo, target, head, known,
                                                    listing.truncated))
        except (ValueError, ConfigError) as error:
            raise ConfigError(f"{target.repo}:{target.readme}: {error}") from None
        content = {**wanted, target.readme: new_readme.encode()}

        changed = {p: d for p, d in content.items() if known.get(p) != git_blob_sha(d)}
        if not changed:
            log.info("GitHub: %s@%s already holds this board; nothing to commit",
                     target.repo, target.branch)
            return None
        elements = [self._element(repo, path, data) for path, data in sorted(changed.items())]
        tree = repo.create_git_tree(elements, base_tree=head.tree)
        if tree.sha == head.tree.sha:  # e.g. a truncated listing hid that nothing changed
            log.info("GitHub: %s@%s unchanged; nothing to commit", target.repo, target.branch)
            return None
        commit = repo.create_git_commit(message, tree, [head])
        crash_point("github.ref-update")
        try:
            ref.edit(commit.sha)  # no force: refused if the branch moved since we read it
        except GithubException as error:
            if error.status == 422 and "fast forward" in _message(error).lower():
                raise _BranchMoved from None
            raise
        log.info("GitHub: published %d changed file(s) to %s@%s as %s", len(changed),
                 target.repo, target.branch, commit.sha[:12])
        return commit.sha

    @staticmethod
    def _element(repo: Repository, path: str, data: bytes) -> InputGitTreeElement:
        """Text goes inline in the tree; only binary files (the pictures) need a blob
        first. Every write waits seconds_between_writes, so each saved write counts."""
        try:
            return InputGitTreeElement(path, FILE_MODE, "blob", content=data.decode("utf-8"))
        except UnicodeDecodeError:
            return InputGitTreeElement(path, FILE_MODE, "blob",
                                       sha=repo.create_git_blob(_b64(data), "base64").sha)

    @staticmethod
    def _readme(repo: Repository, target: GitHubTarget, head: GitCommit,
                known: dict[str, str], truncated: bool) -> str:
        """The README text on `head` ("" when there is none)."""
        if truncated:
            try:
                return repo.get_contents(target.readme, ref=head.sha).decoded_content.decode()
            except GithubException as error:
                if error.status == 404:
                    return ""
                raise
        if target.readme not in known:
            return ""
        blob = repo.get_git_blob(known[target.readme])
        return base64.b64decode(blob.content).decode("utf-8")

    # ---- errors

    def _service_error(self, error: GithubException, target: GitHubTarget) -> ServiceError:
        """PyGithub's exception as ours; never includes the token (GitHub never echoes it)."""
        status, text = error.status, _message(error)
        where = f"{target.repo}@{target.branch}"
        said = f"GitHub said {status} {text!r}"
        headers = {k.lower(): v for k, v in (error.headers or {}).items()}
        if status == 401:
            return ServiceAuthError(SERVICE, f"the token was refused while publishing to "
                                    f"{where} ({said}); renew the token in the setting "
                                    f"{self.token_setting}", status=status)
        limited = status == 429 or headers.get("x-ratelimit-remaining") == "0" or (
            status == 403 and "rate limit" in text.lower())
        if limited:
            return ServiceError(SERVICE, f"rate limited while publishing to {where} ({said}); "
                                "will retry after the limit resets", retryable=True,
                                status=status, retry_after=_retry_after(headers))
        if status == 403:
            return ServiceAuthError(SERVICE, f"the token may not write to {where} ({said}); "
                                    "give it contents read/write permission on the "
                                    f"repository, or renew the setting {self.token_setting}",
                                    status=status)
        if status >= 500:
            return ServiceError(SERVICE, f"server error while publishing to {where} ({said}); "
                                "will retry", retryable=True, status=status,
                                retry_after=_retry_after(headers))
        if status == 404:
            return ServiceError(SERVICE, f"{where} not found ({said}): check the repository "
                                "and branch settings (a private repository the token cannot "
                                "read also answers 404)", retryable=False, status=status)
        if status == 409 and "empty" in text.lower():
            return ServiceError(SERVICE, f"{target.repo} is an empty repository ({said}); "
                                f"create a first commit on {target.branch} with a README "
                                "holding the leaderboard markers", retryable=False,
                                status=status)
        # 409 is GitHub's "another write got there first": passes by itself.
        return ServiceError(SERVICE, f"refused to publish to {where} ({said})",
                            retryable=status == 409, status=status)


def _repo_paths(target: GitHubTarget, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """`files` keyed by their path in the repository; refuses paths that leave the folder."""
    folder = target.folder.strip("/")
    out: dict[str, bytes] = {}
    for path, data in files.items():
        full = posixpath.join(folder, path) if folder else path
        if (path.startswith("/") or posixpath.normpath(full) != full
                or full.split("/")[0] == ".."):
            raise ConfigError(f"cannot publish {path!r} to GitHub: paths must be relative, "
                              "without '.', '..' or doubled slashes")
        out[full] = bytes(data)
    if target.readme in out:
        raise ConfigError(f"{target.readme} is both a published file and the README; "
                          "publish the README through update_readme only")
    return out


def _message(error: GithubException) -> str:
    data: Any = error.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return error.message or str(data or "")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: Retry-After, else until X-RateLimit-Reset (an epoch) when none are
    left, else None (the outbox's own backoff)."""
    try:
        if "retry-after" in headers:
            return max(0.0, float(headers["retry-after"]))
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time()) + 1.0
    except ValueError:
        pass
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
