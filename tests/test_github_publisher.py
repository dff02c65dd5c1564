"""The GitHub publisher against the GitHub-compatible test server, over real loopback HTTP."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from evaluator.clients.github import GitHubPublisher, GitHubTarget, git_blob_sha
from evaluator.support.errors import ConfigError, ServiceAuthError, ServiceError
from leaderboard.render.markdown import README_END, README_START
from tests.servers.github import GitHubServer, blob_sha

TOKEN = "ghp_publisher-secret-0123456789"
REPO = "org/board"
README = f"# Challenge\n\nIntro.\n\n{README_START}\nold table\n{README_END}\n\nFooter.\n"
TARGET = GitHubTarget(REPO, "main", folder="leaderboard")
FILES = {"leaderboard.json": b'{"entries": []}\n', "pictures/p.png": b"\x89PNG\r\n\x00\xff"}


def with_table(body: str) -> Callable[[str], str]:
    """An update_readme that puts `body` between the markers and keeps the rest."""

    def update(text: str) -> str:
        start, end = text.index(README_START) + len(README_START), text.index(README_END)
        return f"{text[:start]}\n{body}\n{text[end:]}"

    return update


@pytest.fixture
def server() -> Iterator[GitHubServer]:
    with GitHubServer(token=TOKEN) as srv:
        srv.create_repo(REPO, {"README.md": README, "other/keep.txt": b"keep\n"})
        yield srv


@pytest.fixture
def publisher(server: GitHubServer) -> Iterator[GitHubPublisher]:
    pub = GitHubPublisher(TOKEN, base_url=server.base_url, token_setting="GITHUB_TOKEN",
                          seconds_between_writes=None)
    yield pub
    pub.close()


def test_git_blob_sha_matches_git() -> None:
    assert git_blob_sha(b"hi\n") == blob_sha(b"hi\n") == "45b983be36b73c0788dc9cbcb76cbb80fc7bb057"


def test_one_commit_holds_every_file_and_keeps_readme_outside_markers(
        server: GitHubServer, publisher: GitHubPublisher) -> None:
    before = server.branch_sha(REPO, "main")
    sha = publisher.publish(TARGET, FILES, with_table("| new |"), "Update leaderboard")
    commits = server.commits(REPO, "main")
    assert [c.sha for c in commits] == [sha, before]  # exactly one new commit
    assert commits[0].message == "Update leaderboard"
    files = server.files(REPO, "main")
    assert files["leaderboard/leaderboard.json"] == FILES["leaderboard.json"]
    assert files["leaderboard/pictures/p.png"] == FILES["pictures/p.png"]  # binary intact
    assert files["other/keep.txt"] == b"keep\n"
    assert files["README.md"].decode() == README.replace("old table", "| new |")


def test_identical_content_makes_no_commit_and_no_write(
        server: GitHubServer, publisher: GitHubPublisher) -> None:
    first = publisher.publish(TARGET, FILES, with_table("| t |"), "Update")
    assert first is not None
    server.requests.clear()
    assert publisher.publish(TARGET, FILES, with_table("| t |"), "Update") is None
    assert server.branch_sha(REPO, "main") == first
    assert all(method == "GET" for method, _ in server.requests)


def test_only_changed_files_are_uploaded(server: GitHubServer,
                                         publisher: GitHubPublisher) -> None:
    publisher.publish(TARGET, FILES, with_table("| t |"), "Update")

    def blobs_for(files: dict[str, bytes]) -> int:
        server.requests.clear()
        assert publisher.publish(TARGET, files, with_table("| t |"), "Update") is not None
        return [p for m, p in server.requests if m == "POST"].count(f"/repos/{REPO}/git/blobs")

    # Text goes inline in the tree: a changed JSON file costs no blob of its own ...
    text = {**FILES, "leaderboard.json": b'{"entries": [1]}\n'}
    assert blobs_for(text) == 0
    assert server.files(REPO, "main")["leaderboard/leaderboard.json"] == b'{"entries": [1]}\n'
    # ... a changed picture one blob, and the unchanged JSON none.
    assert blobs_for({**text, "pictures/p.png": b"\x89PNG\r\n\x00\xfe"}) == 1
    assert server.files(REPO, "main")["leaderboard/pictures/p.png"] == b"\x89PNG\r\n\x00\xfe"


def test_moved_branch_is_rebuilt_on_the_new_head(server: GitHubServer,
                                                 publisher: GitHubPublisher) -> None:
    edited = README.replace("Footer.", "Footer edited by a person.")
    server.move_branch_before_next_update(REPO, "main", {"theirs.txt": b"t\n",
                                                         "README.md": edited})
    sha = publisher.publish(TARGET, FILES, with_table("| new |"), "Update")
    commits = server.commits(REPO, "main")
    assert commits[0].sha == sha and commits[1].message == "Another writer 0"
    assert len(commits) == 3  # theirs, ours, nothing lost or doubled
    files = server.files(REPO, "main")
    assert files["theirs.txt"] == b"t\n"  # the other writer's file is kept
    assert files["README.md"].decode() == edited.replace("old table", "| new |")
    assert files["leaderboard/leaderboard.json"] == FILES["leaderboard.json"]


def test_a_branch_that_keeps_moving_is_retryable(server: GitHubServer,
                                                 publisher: GitHubPublisher) -> None:
    server.move_branch_before_next_update(REPO, "main", {"x.txt": b"x"}, times=3)
    with pytest.raises(ServiceError) as error:
        publisher.publish(TARGET, FILES, with_table("| t |"), "Update")
    assert error.value.retryable and "kept moving" in str(error.value)


def test_readme_without_markers_is_a_config_error(server: GitHubServer,
                                                  publisher: GitHubPublisher) -> None:
    from leaderboard.render.markdown import update_readme

    server.commit_files(REPO, "main", {"README.md": b"# no markers\n"})
    with pytest.raises(ConfigError, match=r"README\.md"):
        publisher.publish(TARGET, FILES, lambda text: update_readme(text, []), "Update")


@pytest.mark.parametrize("path", ["/abs.json", "../up.json", "a//b.json", "./a.json", ""])
def test_paths_must_stay_in_the_folder(publisher: GitHubPublisher, path: str) -> None:
    with pytest.raises(ConfigError):
        publisher.publish(TARGET, {path: b"x"}, with_table("t"), "Update")


def _fault_rate_limit(server: GitHubServer) -> None:
    server.rate_limit_next(reset_in=90)


def _fault_secondary(server: GitHubServer) -> None:
    server.secondary_limit_next(retry_after=42)


def _fault_5xx(server: GitHubServer) -> None:
    server.server_error_next(status=502, method="POST", path="/git/commits$")


def _fault_patch_5xx(server: GitHubServer) -> None:
    server.server_error_next(status=500, method="PATCH")


def _fault_bad_token(server: GitHubServer) -> None:
    server.token = "rotated-token"


def _fault_forbidden(server: GitHubServer) -> None:
    server.fail_next(403, "Resource not accessible by personal access token", method="POST")


def _fault_missing_repo(server: GitHubServer) -> None:
    server.repos.pop(REPO)


def _fault_missing_branch(server: GitHubServer) -> None:
    server.repos[REPO].refs["refs/heads/other"] = server.repos[REPO].refs.pop("refs/heads/main")


def _fault_422(server: GitHubServer) -> None:
    server.fail_next(422, "Validation Failed", method="POST", path="/git/trees$")


def _fault_empty(server: GitHubServer) -> None:
    server.create_repo(REPO)


@pytest.mark.parametrize(("fault", "kind", "retryable", "status", "retry_after"), [
    (_fault_rate_limit, ServiceError, True, 403, (85, 92)),
    (_fault_secondary, ServiceError, True, 429, (42, 42)),
    (_fault_5xx, ServiceError, True, 502, None),
    (_fault_patch_5xx, ServiceError, True, 500, None),
    (_fault_bad_token, ServiceAuthError, True, 401, None),
    (_fault_forbidden, ServiceAuthError, True, 403, None),
    (_fault_missing_repo, ServiceError, False, 404, None),
    (_fault_missing_branch, ServiceError, False, 404, None),
    (_fault_422, ServiceError, False, 422, None),
    (_fault_empty, ServiceError, False, 409, None),
])
def test_errors_map_to_kind_and_retryable(
        server: GitHubServer, publisher: GitHubPublisher, caplog: pytest.LogCaptureFixture,
        fault: Callable[[GitHubServer], None], kind: type[ServiceError], retryable: bool,
        status: int, retry_after: tuple[float, float] | None) -> None:
    # PyGithub logs every request with its headers at DEBUG (its logger is set to INFO).
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")
    fault(server)
    with pytest.raises(ServiceError) as caught:
        publisher.publish(TARGET, FILES, with_table("| t |"), "Update")
    error = caught.value
    assert type(error) is kind
    assert (error.retryable, error.status) == (retryable, status)
    if retry_after is None:
        assert error.retry_after is None
    else:
        assert error.retry_after is not None
        assert retry_after[0] <= error.retry_after <= retry_after[1]
    if kind is ServiceAuthError:
        assert "GITHUB_TOKEN" in str(error)
    assert TOKEN not in str(error) and TOKEN not in repr(error.__cause__)
    assert "Authorization" in caplog.text  # the request log was captured, token masked
    assert TOKEN not in caplog.text


def test_connection_error_is_retryable(server: GitHubServer) -> None:
    base_url = server.base_url
    server.stop()
    publisher = GitHubPublisher(TOKEN, base_url=base_url, seconds_between_writes=None)
    with pytest.raises(ServiceError) as caught:
        publisher.publish(TARGET, FILES, with_table("t"), "Update")
    assert caught.value.retryable and caught.value.status is None
    assert TOKEN not in str(caught.value)


def test_publish_at_the_repository_root(server: GitHubServer,
                                        publisher: GitHubPublisher) -> None:
    publisher.publish(GitHubTarget(REPO, "main"), FILES, with_table("| t |"), "Update")
    assert server.read_file(REPO, "main", "leaderboard.json") == FILES["leaderboard.json"]


def test_readme_not_utf8_is_a_config_error(server: GitHubServer,
                                           publisher: GitHubPublisher) -> None:
    server.commit_files(REPO, "main", {"README.md": b"\xff\xfe latin-1?"})
    with pytest.raises(ConfigError, match=r"README\.md"):
        publisher.publish(TARGET, FILES, with_table("| t |"), "Update")


def test_pygithub_does_not_retry_by_itself(server: GitHubServer,
                                           publisher: GitHubPublisher) -> None:
    # The outbox owns retries and backoff: one failed request is one ServiceError.
    server.server_error_next(count=5, status=502, method="POST", path="/git/blobs$")
    with pytest.raises(ServiceError):
        publisher.publish(TARGET, FILES, with_table("| t |"), "Update")
    assert [p for m, p in server.requests if m == "POST"] == [f"/repos/{REPO}/git/blobs"]


def test_two_publishers_racing_both_land(server: GitHubServer) -> None:
    """Real concurrency: the non-force ref update is a compare-and-swap, so neither commit
    is lost, whichever order the requests interleave in."""
    results: dict[str, str | None] = {}

    def run(name: str) -> None:
        pub = GitHubPublisher(TOKEN, base_url=server.base_url, seconds_between_writes=None,
                              max_attempts=10)
        target = GitHubTarget(REPO, "main", folder=name)
        results[name] = pub.publish(target, FILES, with_table("| t |"), f"from {name}")
        pub.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    files = server.files(REPO, "main")
    assert {"a/leaderboard.json", "b/leaderboard.json"} <= set(files)
    messages = [c.message for c in server.commits(REPO, "main")]
    assert sorted(messages[:2]) == ["from a", "from b"] and len(messages) == 3
