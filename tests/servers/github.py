"""A GitHub-compatible REST server on loopback, for tests that drive unmodified PyGithub.

    with GitHubServer(token="t0k") as server:
        server.create_repo("org/board", {"README.md": b"# hi\n"})
        gh = Github(auth=Auth.Token("t0k"), base_url=server.base_url, retry=None,
                    seconds_between_requests=None, seconds_between_writes=None)

`base_url` is `http://127.0.0.1:PORT/api/v3` (the GitHub Enterprise shape). PyGithub takes
scheme, host, port and path prefix from it and checks that every absolute URL the server
returns has the same host, port and prefix, so all URLs here are built from `base_url`.

Served (paths below the prefix): repos, contents GET/PUT (409 on a stale sha, 422 when the
sha is missing for an existing file), the Git Data API (blobs, trees with base_tree, commits,
refs singular and plural, PATCH with a fast-forward check). Objects carry real git SHAs, so
identical content gives identical tree SHAs and `git hash-object` / `git write-tree` agree.

Test API: `create_repo`, `commit_files` (another writer), `files`, `read_file`, `commits`,
`branch_sha`; faults on demand: `fail_next`, `rate_limit_next`, `secondary_limit_next`,
`server_error_next`, `move_branch_before_next_update`, and `token` (change it to make the
client's token "bad").
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.servers.http_handler import KeepAliveHandler

log = logging.getLogger(__name__)

DOCS = "https://docs.github.com/rest"
BLOB_MODE, TREE_MODE = "100644", "040000"
_AUTHOR = {"name": "probeboard-test", "email": "test@example.invalid"}


# ----------------------------------------------------------------------------- git objects


def git_sha(kind: str, body: bytes) -> str:
    """The SHA-1 git gives an object: sha1(b"<kind> <len>\\0" + body)."""
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()


def blob_sha(data: bytes) -> str:
    return git_sha("blob", data)


@dataclass
class Commit:
    sha: str
    tree: str
    parents: list[str]
    message: str
    author: dict[str, str]


@dataclass
class Repo:
    owner: str
    name: str
    default_branch: str = "main"
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit sha


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class Fault:
    """An error answer for the next `count` requests matching `method` / `path`."""

    status: int
    message: str
    count: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None  # a regex searched in the path below the prefix

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        )


class GitStore:
    """Content-addressed objects shared by all repos (like a fork network): blobs, trees
    (entries: name -> (mode, sha)) and commits."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, tuple[str, str]]] = {}
        self.commits: dict[str, Commit] = {}
        self._clock = 1_700_000_000

    def put_blob(self, data: bytes) -> str:
        sha = blob_sha(data)
        self.blobs[sha] = data
        return sha

    def put_tree(self, entries: dict[str, tuple[str, str]]) -> str:
        # git sorts entries by name, a subtree's name as if it ended in "/".
        def key(name: str) -> bytes:
            return (name + "/" if entries[name][0] == TREE_MODE else name).encode()

        body = b"".join(
            f"{entries[n][0].lstrip('0')} {n}\0".encode() + bytes.fromhex(entries[n][1])
            for n in sorted(entries, key=key)
        )
        sha = git_sha("tree", body)
        self.trees[sha] = dict(entries)
        return sha

    def put_commit(self, tree: str, parents: list[str], message: str,
                   author: dict[str, str] | None = None) -> Commit:
        author = dict(author or _AUTHOR)
        self._clock += 1  # distinct, increasing times: two equal commits stay distinct
        who = f"{author['name']} <{author['email']}> {self._clock} +0000"
        body = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        body += f"author {who}\ncommitter {who}\n\n{message}"
        commit = Commit(git_sha("commit", body.encode()), tree, list(parents), message, author)
        self.commits[commit.sha] = commit
        return commit

    def flatten(self, tree: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        """path -> (mode, blob sha) for every file below `tree`."""
        out: dict[str, tuple[str, str]] = {}
        for name, (mode, sha) in self.trees[tree].items():
            if mode == TREE_MODE:
                out.update(self.flatten(sha, f"{prefix}{name}/"))
            else:
                out[prefix + name] = (mode, sha)
        return out

    def build(self, files: Mapping[str, tuple[str, str]]) -> str:
        """The tree sha of a flat path -> (mode, blob sha) mapping (subtrees created)."""
        here: dict[str, tuple[str, str]] = {}
        below: dict[str, dict[str, tuple[str, str]]] = {}
        for path, entry in files.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = entry
            else:
                here[head] = entry
        for name, sub in below.items():
            here[name] = (TREE_MODE, self.build(sub))
        return self.put_tree(here)

    def is_ancestor(self, ancestor: str, commit: str) -> bool:
        todo, seen = [commit], set()
        while todo:
            sha = todo.pop()
            if sha == ancestor:
                return True
            if sha not in seen and sha in self.commits:
                seen.add(sha)
                todo.extend(self.commits[sha].parents)
        return False


# ----------------------------------------------------------------------------- server


class GitHubServer:
    """The server and its test API; one lock guards all state."""

    def __init__(self, token: str = "test-token", prefix: str = "/api/v3") -> None:
        self.token = token
        self.can_push = True  # what the repo's "permissions" says of the token
        self.prefix = prefix.rstrip("/")
        self.store = GitStore()
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.ref_update_hooks: list[Callable[[], None]] = []
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> GitHubServer:
        handler = type("Handler", (_Handler,), {"server_api": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it at the end of every test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> GitHubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.prefix}"

    # ---- test API: state

    def create_repo(self, full_name: str, files: Mapping[str, bytes | str] | None = None,
                    branch: str = "main", message: str = "Initial commit") -> str | None:
        """A repository whose `branch` holds `files`; empty (no commit at all) when `files`
        is None. Returns the first commit's sha."""
        owner, name = full_name.split("/")
        with self.lock:
            self.repos[full_name] = Repo(owner, name, default_branch=branch)
            if files is None:
                return None
            tree = self.store.build({p: (BLOB_MODE, self.store.put_blob(_bytes(d)))
                                     for p, d in files.items()})
            commit = self.store.put_commit(tree, [], message)
            self.repos[full_name].refs[f"refs/heads/{branch}"] = commit.sha
            return commit.sha

    def commit_files(self, full_name: str, branch: str, files: Mapping[str, bytes | str],
                     message: str = "Another writer", delete: tuple[str, ...] = ()) -> str:
        """Commit on top of `branch` as someone else would (files added/replaced/deleted)."""
        with self.lock:
            repo = self.repos[full_name]
            head = repo.refs[f"refs/heads/{branch}"]
            flat = self.store.flatten(self.store.commits[head].tree)
            for path in delete:
                flat.pop(path, None)
            for path, data in files.items():
                flat[path] = (BLOB_MODE, self.store.put_blob(_bytes(data)))
            commit = self.store.put_commit(self.store.build(flat), [head], message)
            repo.refs[f"refs/heads/{branch}"] = commit.sha
            return commit.sha

    def branch_sha(self, full_name: str, branch: str) -> str:
        with self.lock:
            return self.repos[full_name].refs[f"refs/heads/{branch}"]

    def tree_sha(self, full_name: str, branch: str) -> str:
        with self.lock:
            return self.store.commits[self.branch_sha(full_name, branch)].tree

    def files(self, full_name: str, branch: str) -> dict[str, bytes]:
        """Every file on the branch head: path -> content."""
        with self.lock:
            flat = self.store.flatten(self.tree_sha(full_name, branch))
            return {path: self.store.blobs[sha] for path, (_, sha) in flat.items()}

    def read_file(self, full_name: str, branch: str, path: str) -> bytes:
        return self.files(full_name, branch)[path]

    def commits(self, full_name: str, branch: str) -> list[Commit]:
        """The branch's first-parent history, newest first."""
        with self.lock:
            out, sha = [], self.repos[full_name].refs.get(f"refs/heads/{branch}")
            while sha:
                out.append(self.store.commits[sha])
                sha = self.store.commits[sha].parents[0] if self.store.commits[sha].parents \
                    else None
            return out

    # ---- test API: faults

    def fail_next(self, status: int, message: str, count: int = 1, *,
                  headers: Mapping[str, str] | None = None, method: str | None = None,
                  path: str | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(status, message, count, dict(headers or {}), method, path))

    def rate_limit_next(self, count: int = 1, reset_in: int = 120, **match: Any) -> None:
        """Primary rate limit: 403 with X-RateLimit-Remaining: 0 and the reset epoch."""
        reset = str(int(time.time()) + reset_in)
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
        self.fail_next(403, "API rate limit exceeded for user ID 1.", count, headers=headers,
                       **match)

    def secondary_limit_next(self, count: int = 1, retry_after: int = 30, **match: Any) -> None:
        """Secondary rate limit: 429 with Retry-After."""
        self.fail_next(429, "You have exceeded a secondary rate limit. Please wait a few "
                       "minutes before you try again.", count,
                       headers={"Retry-After": str(retry_after)}, **match)

    def server_error_next(self, count: int = 1, status: int = 502, **match: Any) -> None:
        self.fail_next(status, "Server Error", count, **match)

    def move_branch_before_next_update(self, full_name: str, branch: str,
                                       files: Mapping[str, bytes | str], times: int = 1) -> None:
        """Another writer commits `files` to `branch` between our read of the ref and our
        PATCH of it, for the next `times` ref updates."""
        with self.lock:
            for i in range(times):
                self.ref_update_hooks.append(lambda i=i: self.commit_files(
                    full_name, branch, files, f"Another writer {i}"))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    return fault
            return None

    # ---- request handling

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str],
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        url = urllib.parse.urlsplit(raw_path)
        path = url.path
        if not path.startswith(self.prefix + "/"):
            raise HTTPError(404, "Not Found")
        path = path[len(self.prefix):]
        query = dict(urllib.parse.parse_qsl(url.query))
        with self.lock:
            self.requests.append((method, path))
        auth = headers.get("Authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            raise HTTPError(401, "Bad credentials")
        fault = self._take_fault(method, path)
        if fault is not None:
            raise HTTPError(fault.status, fault.message, fault.headers)
        data = json.loads(body) if body else {}
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not match:
            raise HTTPError(404, "Not Found")
        full_name, rest = f"{match[1]}/{match[2]}", match[3] or ""
        if method == "PATCH" and rest.startswith(("/git/refs/", "/git/ref/")):
            # Another writer may commit here: outside our lock, before we look at the ref.
            with self.lock:
                hook = self.ref_update_hooks.pop(0) if self.ref_update_hooks else None
            if hook is not None:
                hook()
        with self.lock:
            repo = self.repos.get(full_name)
            if repo is None:
                raise HTTPError(404, "Not Found")
            return _Routes(self, repo).dispatch(method, urllib.parse.unquote(rest), query, data)


class _Routes:
    """The endpoints of one repository; called with the server lock held."""

    def __init__(self, server: GitHubServer, repo: Repo) -> None:
        self.server, self.repo, self.store = server, repo, server.store
        self.url = f"{server.base_url}/repos/{repo.owner}/{repo.name}"

    def dispatch(self, method: str, rest: str, query: dict[str, str],
                 data: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"", self.get_repo),
            ("GET", r"/contents/?(.*)", self.get_contents),
            ("PUT", r"/contents/(.+)", self.put_contents),
            ("GET", r"/git/refs?/(.+)", self.get_ref),
            ("GET", r"/git/refs/?", self.list_refs),
            ("POST", r"/git/refs", self.create_ref),
            ("PATCH", r"/git/refs?/(.+)", self.update_ref),
            ("POST", r"/git/blobs", self.create_blob),
            ("GET", r"/git/blobs/(\w+)", self.get_blob),
            ("POST", r"/git/trees", self.create_tree),
            ("GET", r"/git/trees/(\w+)", self.get_tree),
            ("POST", r"/git/commits", self.create_commit),
            ("GET", r"/git/commits/(\w+)", self.get_commit),
        ]
        for verb, pattern, func in routes:
            found = re.fullmatch(pattern, rest)
            if verb == method and found:
                status, body = func(*found.groups(), query=query, data=data)
                return status, body, {}
        raise HTTPError(404, "Not Found")

    # ---- helpers

    def _head(self, branch: str) -> str | None:
        return self.repo.refs.get(f"refs/heads/{branch}")

    def _empty_check(self) -> None:
        if not self.repo.refs:
            raise HTTPError(409, "Git Repository is empty.")

    def _commit_json(self, commit: Commit) -> dict[str, Any]:
        when = {**commit.author, "date": "2026-01-01T00:00:00Z"}
        return {
            "sha": commit.sha, "url": f"{self.url}/git/commits/{commit.sha}",
            "author": when, "committer": when, "message": commit.message,
            "tree": {"sha": commit.tree, "url": f"{self.url}/git/trees/{commit.tree}"},
            "parents": [{"sha": p, "url": f"{self.url}/git/commits/{p}"} for p in commit.parents],
        }

    def _ref_json(self, ref: str) -> dict[str, Any]:
        sha = self.repo.refs[ref]
        return {"ref": ref, "url": f"{self.url}/git/{ref}",  # plural "refs/...", as GitHub
                "object": {"type": "commit", "sha": sha, "url": f"{self.url}/git/commits/{sha}"}}

    def _file_json(self, path: str, sha: str) -> dict[str, Any]:
        return {"type": "file", "name": path.rsplit("/", 1)[-1], "path": path, "sha": sha,
                "size": len(self.store.blobs[sha]),
                "url": f"{self.url}/contents/{urllib.parse.quote(path)}"}

    def _commit_on(self, branch: str, flat: dict[str, tuple[str, str]], message: str) -> Commit:
        head = self._head(branch)
        commit = self.store.put_commit(self.store.build(flat), [head] if head else [], message)
        self.repo.refs[f"refs/heads/{branch}"] = commit.sha
        return commit

    # ---- repos and contents

    def get_repo(self, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        r = self.repo
        return 200, {"id": zlib.crc32(r.name.encode()), "name": r.name,
                     "full_name": f"{r.owner}/{r.name}", "owner": {"login": r.owner},
                     "default_branch": r.default_branch, "private": False, "url": self.url,
                     "permissions": {"admin": False, "push": self.server.can_push,
                                     "pull": True}}

    def get_contents(self, path: str, query: dict[str, str],
                     data: dict[str, Any]) -> tuple[int, Any]:
        if not self.repo.refs:
            raise HTTPError(404, "This repository is empty.")
        ref = query.get("ref", self.repo.default_branch)
        head = self._head(ref) or (ref if ref in self.store.commits else None)
        if head is None:
            raise HTTPError(404, f"No commit found for the ref {ref}")
        flat = self.store.flatten(self.store.commits[head].tree)
        path = path.strip("/")
        if path in flat:
            sha = flat[path][1]
            content = base64.encodebytes(self.store.blobs[sha]).decode()
            return 200, {**self._file_json(path, sha), "encoding": "base64", "content": content}
        listing = [self._file_json(p, s) for p, (_, s) in sorted(flat.items())
                   if p.rsplit("/", 1)[0] == path or (not path and "/" not in p)]
        if listing:
            return 200, listing
        raise HTTPError(404, "Not Found")

    def put_contents(self, path: str, query: dict[str, str],
                     data: dict[str, Any]) -> tuple[int, Any]:
        branch = data.get("branch", self.repo.default_branch)
        head = self._head(branch)
        if head is None and self.repo.refs:
            raise HTTPError(404, f"Branch {branch} not found")
        flat = self.store.flatten(self.store.commits[head].tree) if head else {}
        current = flat.get(path, (None, None))[1]
        if current is not None and "sha" not in data:
            raise HTTPError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if "sha" in data and data["sha"] != current:
            raise HTTPError(409, f"{path} does not match {data['sha']}")
        sha = self.store.put_blob(base64.b64decode(data["content"]))
        flat[path] = (BLOB_MODE, sha)
        commit = self._commit_on(branch, flat, data["message"])
        return (200 if current else 201), {"content": self._file_json(path, sha),
                                           "commit": self._commit_json(commit)}

    # ---- refs

    def get_ref(self, ref: str, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        self._empty_check()
        full = f"refs/{ref}"
        if full not in self.repo.refs:
            raise HTTPError(404, "Not Found")
        return 200, self._ref_json(full)

    def list_refs(self, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        self._empty_check()
        return 200, [self._ref_json(r) for r in sorted(self.repo.refs)]

    def create_ref(self, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        if data["ref"] in self.repo.refs:
            raise HTTPError(422, "Reference already exists")
        if data["sha"] not in self.store.commits:
            raise HTTPError(422, "Object does not exist")
        self.repo.refs[data["ref"]] = data["sha"]
        return 201, self._ref_json(data["ref"])

    def update_ref(self, ref: str, query: dict[str, str],
                   data: dict[str, Any]) -> tuple[int, Any]:
        full = f"refs/{ref}"
        if full not in self.repo.refs:
            raise HTTPError(422, "Reference does not exist")
        new = data.get("sha")
        if new not in self.store.commits:
            raise HTTPError(422, "Object does not exist")
        if not data.get("force") and not self.store.is_ancestor(self.repo.refs[full], new):
            raise HTTPError(422, "Update is not a fast forward")
        self.repo.refs[full] = new
        return 200, self._ref_json(full)

    # ---- git objects

    def create_blob(self, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        self._empty_check()
        content = data["content"]
        raw = base64.b64decode(content) if data.get("encoding") == "base64" else content.encode()
        sha = self.store.put_blob(raw)
        return 201, {"sha": sha, "url": f"{self.url}/git/blobs/{sha}"}

    def get_blob(self, sha: str, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        if sha not in self.store.blobs:
            raise HTTPError(404, "Not Found")
        raw = self.store.blobs[sha]
        return 200, {"sha": sha, "size": len(raw), "url": f"{self.url}/git/blobs/{sha}",
                     "encoding": "base64", "content": base64.encodebytes(raw).decode()}

    def create_tree(self, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        self._empty_check()
        base = data.get("base_tree")
        if base is not None and base not in self.store.trees:
            raise HTTPError(422, "base_tree is not a valid tree oid")
        flat = self.store.flatten(base) if base else {}
        for item in data.get("tree", []):
            path = item["path"]
            if "content" in item:
                flat[path] = (item.get("mode", BLOB_MODE), self.store.put_blob(
                    item["content"].encode()))
            elif item.get("sha") is None:  # deletes the path (a file or a whole folder)
                for p in [p for p in flat if p == path or p.startswith(path + "/")]:
                    del flat[p]
            elif item.get("type") == "tree":
                if item["sha"] not in self.store.trees:
                    raise HTTPError(422, f"tree.sha {item['sha']} is not a valid tree")
                flat.update({f"{path}/{p}": e for p, e in self.store.flatten(item["sha"]).items()})
            else:
                if item["sha"] not in self.store.blobs:
                    raise HTTPError(422, f"tree.sha {item['sha']} is not a valid blob")
                flat[path] = (item.get("mode", BLOB_MODE), item["sha"])
        return 201, self._tree_json(self.store.build(flat), recursive=False)

    def _tree_json(self, sha: str, recursive: bool) -> dict[str, Any]:
        def entries(tree: str, prefix: str) -> list[dict[str, Any]]:
            out = []
            for name, (mode, child) in sorted(self.store.trees[tree].items()):
                kind = "tree" if mode == TREE_MODE else "blob"
                item = {"path": prefix + name, "mode": mode, "type": kind, "sha": child,
                        "url": f"{self.url}/git/{kind}s/{child}"}
                if kind == "blob":
                    item["size"] = len(self.store.blobs[child])
                out.append(item)
                if kind == "tree" and recursive:
                    out.extend(entries(child, f"{prefix}{name}/"))
            return out

        return {"sha": sha, "url": f"{self.url}/git/trees/{sha}", "tree": entries(sha, ""),
                "truncated": False}

    def get_tree(self, sha: str, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        if sha not in self.store.trees:
            raise HTTPError(404, "Not Found")
        return 200, self._tree_json(sha, recursive=query.get("recursive") not in (None, "0"))

    def create_commit(self, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        self._empty_check()
        if data.get("tree") not in self.store.trees:
            raise HTTPError(422, "Tree SHA does not exist")
        parents = data.get("parents", [])
        if any(p not in self.store.commits for p in parents):
            raise HTTPError(422, "Parent SHA does not exist or is not a commit object")
        author = data.get("author") or None
        commit = self.store.put_commit(data["tree"], parents, data["message"], author)
        return 201, self._commit_json(commit)

    def get_commit(self, sha: str, query: dict[str, str],
                   data: dict[str, Any]) -> tuple[int, Any]:
        if sha not in self.store.commits:
            raise HTTPError(404, "Not Found")
        return 200, self._commit_json(self.store.commits[sha])


class _Handler(KeepAliveHandler):
    server_api: GitHubServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999",
                   "X-RateLimit-Reset": str(int(time.time()) + 3600)}
        try:
            status, payload, extra = self.server_api.handle(
                self.command, self.path, self.headers, body)
        except HTTPError as error:
            status, payload, extra = error.status, {"message": error.message,
                                                    "documentation_url": DOCS}, error.headers
        except Exception:  # a bug here must show in the test log, not hang the client
            log.exception("test GitHub server failed on %s %s", self.command, self.path)
            status, payload, extra = 500, {"message": "Server Error"}, {}
        # One value per header: PyGithub int()s the x-ratelimit-* values.
        headers.update(extra)
        out = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only (never headers: they hold the token).
        log.debug("github test server: " + format, *args)


def _bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data
