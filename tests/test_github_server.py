"""The GitHub-compatible test server, driven by unmodified PyGithub over loopback HTTP."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    InputGitTreeElement,
    RateLimitExceededException,
    UnknownObjectException,
)

from tests.servers.github import GitHubServer, blob_sha

TOKEN = "ghp_server-test-token"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")


@pytest.fixture
def server() -> Iterator[GitHubServer]:
    with GitHubServer(token=TOKEN) as srv:
        srv.create_repo("org/board", {"README.md": b"# Board\n", "docs/a.txt": b"a\n"})
        yield srv


def client(server: GitHubServer, token: str = TOKEN) -> Github:
    return Github(auth=Auth.Token(token), base_url=server.base_url, retry=None,
                  seconds_between_requests=None, seconds_between_writes=None)


def git(cwd: Path, *args: str, data: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True,
                          check=True).stdout.decode().strip()


def test_contents_create_update_and_conflicts(server: GitHubServer) -> None:
    repo = client(server).get_repo("org/board")
    created = repo.create_file("board.json", "add", b"{}\n", branch="main")
    assert created["content"].sha == blob_sha(b"{}\n")
    current = repo.get_contents("board.json", ref="main")
    assert current.decoded_content == b"{}\n"

    repo.update_file("board.json", "update", b"[]\n", current.sha, branch="main")
    assert server.read_file("org/board", "main", "board.json") == b"[]\n"
    with pytest.raises(GithubException) as stale:  # the sha read before the update
        repo.update_file("board.json", "again", b"1\n", current.sha, branch="main")
    assert stale.value.status == 409
    with pytest.raises(GithubException) as missing_sha:
        repo.create_file("board.json", "again", b"1\n", branch="main")
    assert missing_sha.value.status == 422
    assert [c.message for c in server.commits("org/board", "main")] == [
        "update", "add", "Initial commit"]


def test_contents_missing_file_and_unknown_ref(server: GitHubServer) -> None:
    repo = client(server).get_repo("org/board")
    with pytest.raises(UnknownObjectException):
        repo.get_contents("nope.txt", ref="main")
    with pytest.raises(GithubException) as unknown_ref:
        repo.get_contents("README.md", ref="no-such-branch")
    # The message lacks "not found", so PyGithub raises the plain class, as with GitHub.
    assert unknown_ref.value.status == 404
    assert type(unknown_ref.value) is GithubException
    with pytest.raises(UnknownObjectException):
        client(server).get_repo("org/missing")


@needs_git
def test_object_shas_equal_git(server: GitHubServer, tmp_path: Path) -> None:
    files = {"README.md": b"# Board\n", "docs/a.txt": b"a\n"}
    git(tmp_path, "init", "-q")
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    git(tmp_path, "add", ".")
    assert git(tmp_path, "hash-object", "--stdin", data=b"a\n") == blob_sha(b"a\n")
    assert server.tree_sha("org/board", "main") == git(tmp_path, "write-tree")

    repo = client(server).get_repo("org/board")
    blob = repo.create_git_blob("AAEC/w==", "base64")  # bytes 00 01 02 ff
    assert blob.sha == git(tmp_path, "hash-object", "--stdin", data=b"\x00\x01\x02\xff")


def test_git_data_commit_and_fast_forward(server: GitHubServer) -> None:
    repo = client(server).get_repo("org/board")
    ref = repo.get_git_ref("heads/main")
    assert ref.url.endswith("/git/refs/heads/main")  # plural, as GitHub: edit() PATCHes it
    head = repo.get_git_commit(ref.object.sha)
    same = repo.create_git_tree(
        [InputGitTreeElement("docs/a.txt", "100644", "blob", content="a\n")], base_tree=head.tree)
    assert same.sha == head.tree.sha  # identical content, identical tree
    tree = repo.create_git_tree(
        [InputGitTreeElement("docs/b.txt", "100644", "blob", content="b\n")], base_tree=head.tree)
    commit = repo.create_git_commit("add b", tree, [head])
    assert commit.parents[0].sha == head.sha

    server.commit_files("org/board", "main", {"other.txt": b"o"})  # the branch moves on
    with pytest.raises(GithubException) as refused:
        ref.edit(commit.sha)
    assert refused.value.status == 422
    assert "fast forward" in refused.value.data["message"]
    ref.edit(commit.sha, force=True)
    assert server.branch_sha("org/board", "main") == commit.sha
    listing = repo.get_git_tree(tree.sha, recursive=True)
    assert {e.path for e in listing.tree if e.type == "blob"} == {
        "README.md", "docs/a.txt", "docs/b.txt"}


def test_move_branch_hook_runs_between_read_and_patch(server: GitHubServer) -> None:
    repo = client(server).get_repo("org/board")
    ref = repo.get_git_ref("heads/main")
    head = repo.get_git_commit(ref.object.sha)
    commit = repo.create_git_commit("mine", head.tree, [head])
    server.move_branch_before_next_update("org/board", "main", {"theirs.txt": b"t"})
    with pytest.raises(GithubException) as refused:
        ref.edit(commit.sha)
    assert refused.value.status == 422
    assert "theirs.txt" in server.files("org/board", "main")


def test_faults_on_demand(server: GitHubServer) -> None:
    gh = client(server)
    repo = gh.get_repo("org/board")
    server.rate_limit_next()
    with pytest.raises(RateLimitExceededException) as primary:
        repo.get_git_ref("heads/main")
    assert primary.value.headers["x-ratelimit-remaining"] == "0"
    server.secondary_limit_next(retry_after=7)
    with pytest.raises(GithubException) as secondary:
        repo.get_git_ref("heads/main")
    assert (secondary.value.status, secondary.value.headers["retry-after"]) == (429, "7")
    server.server_error_next(count=2, status=503)
    for _ in range(2):
        with pytest.raises(GithubException) as unavailable:
            repo.get_git_ref("heads/main")
        assert unavailable.value.status == 503
    assert repo.get_git_ref("heads/main").object.sha == server.branch_sha("org/board", "main")
    server.fail_next(409, "Conflict", method="POST", path=r"/git/trees$")
    with pytest.raises(GithubException) as conflict:
        repo.create_git_tree([InputGitTreeElement("x", "100644", "blob", content="x")])
    assert conflict.value.status == 409
    with pytest.raises(BadCredentialsException):
        client(server, token="wrong").get_repo("org/board")


def test_empty_repository_refuses_git_data(server: GitHubServer) -> None:
    server.create_repo("org/empty")
    repo = client(server).get_repo("org/empty")
    with pytest.raises(GithubException) as empty:
        repo.get_git_ref("heads/main")
    assert empty.value.status == 409
    repo.create_file("README.md", "bootstrap", b"hi\n", branch="main")
    assert server.files("org/empty", "main") == {"README.md": b"hi\n"}
