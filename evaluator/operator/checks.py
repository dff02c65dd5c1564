"""`probeboard check-config`: the settings and every connection, one verdict a line.

Nothing is changed anywhere: the EvalAI checks use requests EvalAI refuses before acting,
the GitHub check only reads, and the database is migrated (which `run` would do anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from evaluator.daemon.settings import PhaseSettings, Settings, load_settings
from evaluator.daemon.wiring import evalai_client, github_publisher
from evaluator.db.store import open_store
from evaluator.scoring.tasks import read_tasks, select_tasks
from evaluator.support.errors import ProbeboardError

Verdict = tuple[bool, str]


def check_settings(path: Path) -> Iterator[Verdict]:
    try:
        settings = load_settings(path)
    except ProbeboardError as error:
        yield False, f"settings: {error}"
        return
    yield True, f"settings: {settings.path} ({len(settings.phases)} phases)"
    checks: list[tuple[str, Callable[[], str]]] = [
        ("database", lambda: _database(settings)),
        *((f"phase {phase.slug} labels", lambda phase=phase: _labels(phase))
          for phase in settings.phases),
    ]
    if settings.evalai is not None:
        client = evalai_client(settings)
        assert client is not None
        checks += [("EvalAI token", client.check_host), ("EvalAI queue", client.check_queue)]
    else:
        checks.append(("inbox", lambda: f"submissions are taken from {settings.inbox}"))
    if settings.github is not None:
        checks.append(("GitHub", lambda: _github(settings)))
    if settings.publish_folder is not None:
        checks.append(("publish folder", lambda: _folder(settings)))
    for name, check in checks:
        try:
            yield True, f"{name}: {check()}"
        except ProbeboardError as error:
            yield False, f"{name}: {error}"
        except OSError as error:
            yield False, f"{name}: {error}"


def _database(settings: Settings) -> str:
    store = open_store(settings.database)
    try:
        store.upgrade()
        return f"{store.url.render_as_string(hide_password=True)} at revision " \
               f"{store.current_revision()}"
    finally:
        store.close()


def _labels(phase: PhaseSettings) -> str:
    tasks = select_tasks(read_tasks(phase.labels), phase.scoring.task_filter)
    return f"{len(tasks)} tasks readable in {phase.labels}"


def _github(settings: Settings) -> str:
    from evaluator.clients.github import GitHubTarget

    github = settings.github
    publisher = github_publisher(settings)
    assert github is not None and publisher is not None
    try:
        return publisher.check_writable(GitHubTarget(github.repo, github.branch))
    finally:
        publisher.close()


def _folder(settings: Settings) -> str:
    folder = settings.publish_folder
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".probeboard-write-check"
    probe.write_text("ok")
    probe.unlink()
    return f"{folder} writable"
