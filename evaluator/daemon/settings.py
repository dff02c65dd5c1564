"""The daemon's configuration file (YAML), validated key by key.

    challenge: {slug: embed-2026, title: "Embedding compression 2026"}
    database: sqlite:////var/lib/probeboard/probeboard.db   # or postgresql://...
    scoring: {k_folds: 200}              # EvaluationConfig keys; phases may override
    phases:
      - slug: dev
        labels: /srv/labels/dev          # the phase's secret label folder
        evalai_phase_pk: 1               # with `evalai:` only
        counting_rule: latest_public     # or best
        hidden_tasks: true               # results name no task
        scoring: {k_folds: 40}
    evalai:                              # absent: submissions come from `inbox:`
      url: https://eval.ai
      challenge_pk: 1
      queue: embed-2026-queue
      token_env: EVALAI_TOKEN            # or token_file: /etc/probeboard/evalai-token
      split: test                        # the dataset split codename results go to
      storage_hosts: [evalai.s3.amazonaws.com]
      labels: {rank: Rank, weighted_score: Weighted score, mean_q: Mean Q}
    inbox: ./inbox                       # INBOX/PHASE/TEAM.csv (embedded default)
    publish:
      folder: ./boards                   # FOLDER/PHASE/: json, README, html, pictures
      github: {repo: owner/name, branch: main, folder: boards, token_env: GITHUB_TOKEN}
    workers: {concurrent: 1, threads: 2, wall_seconds: 3600, memory_mb: 8192,
              max_file_mb: 512, lease_seconds: 120, max_attempts: 3,
              max_interruptions: 10}
    poll_seconds: 60
    workdir: ./work                      # downloads, inbox copies, status.json

Relative paths are relative to the file's folder. Secrets are never in the file: each
token comes from the environment variable `token_env` names, or the file `token_file`
names (first line).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml

from evaluator.scoring.config import EvaluationConfig, config_from_mapping
from evaluator.support.errors import ConfigError


@dataclass(frozen=True)
class PhaseSettings:
    slug: str
    labels: Path
    scoring: EvaluationConfig
    counting_rule: str = "latest_public"
    hidden_tasks: bool = True
    evalai_phase_pk: int | None = None


@dataclass(frozen=True)
class EvalAISettings:
    url: str
    challenge_pk: int
    queue: str
    token: str = field(repr=False)
    token_source: str
    split: str = "test"
    storage_hosts: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))


@dataclass(frozen=True)
class GitHubSettings:
    repo: str
    token: str = field(repr=False)
    token_source: str
    branch: str = "main"
    folder: str = ""
    readme: str = "README.md"
    base_url: str = "https://api.github.com"
    # GitHub asks integrations to space writes about a second apart (secondary limits).
    seconds_between_writes: float = 1.0


@dataclass(frozen=True)
class WorkerSettings:
    concurrent: int = 1
    threads: int = 2
    wall_seconds: float = 3600.0
    memory_mb: int = 8192
    max_file_mb: int = 512
    lease_seconds: float = 120.0
    # Evaluations whose child crashed under a live daemon: at the cap the file fails.
    max_attempts: int = 3
    # Evaluations cut short by the daemon itself dying (restarts, kills, the VM's OOM
    # killer): never the file's fault; at the cap it is held for the organiser.
    max_interruptions: int = 10
    shutdown_grace_seconds: float = 60.0


@dataclass(frozen=True)
class Settings:
    path: Path
    challenge: str
    title: str
    database: str
    phases: tuple[PhaseSettings, ...]
    workers: WorkerSettings
    evalai: EvalAISettings | None = None
    inbox: Path | None = None
    publish_folder: Path | None = None
    github: GitHubSettings | None = None
    poll_seconds: float = 60.0
    workdir: Path = Path("work")  # downloads, inbox copies, child folders, status.json

    def phase(self, slug: str) -> PhaseSettings:
        for phase in self.phases:
            if phase.slug == slug:
                return phase
        raise ConfigError(f"{self.path}: no phase {slug!r} (phases: "
                          f"{', '.join(p.slug for p in self.phases)})")


DEFAULT_LABELS = {"rank": "Rank", "weighted_score": "Weighted score", "mean_q": "Mean Q"}
TOP_KEYS = {"challenge", "database", "scoring", "phases", "evalai", "inbox", "publish",
            "workers", "poll_seconds", "workdir"}
PHASE_KEYS = {"slug", "labels", "scoring", "counting_rule", "hidden_tasks", "evalai_phase_pk"}
EVALAI_KEYS = {"url", "challenge_pk", "queue", "token_env", "token_file", "split",
               "storage_hosts", "labels"}
GITHUB_KEYS = {"repo", "branch", "folder", "readme", "base_url", "token_env", "token_file",
               "seconds_between_writes"}
WORKER_KEYS = set(WorkerSettings.__dataclass_fields__)


def load_settings(path: Path | str, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the daemon's YAML file; every problem names its key."""
    path = Path(path).resolve()
    environ = os.environ if environ is None else environ
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"settings file {path} does not exist; pass --settings FILE.yaml "
                          "(deploy/probeboard.example.yaml shows every key)") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"settings file {path} is not valid YAML: {error}") from None
    where = str(path)
    top = _mapping(raw, where, TOP_KEYS)
    base = path.parent
    challenge = _mapping(top.get("challenge"), f"{where}: challenge", {"slug", "title"})
    slug = _text(challenge, "slug", f"{where}: challenge")
    defaults = _mapping(top.get("scoring", {}), f"{where}: scoring", None)
    phases = tuple(_phase(item, i, defaults, base, where)
                   for i, item in enumerate(_list(top.get("phases"), f"{where}: phases")))
    if not phases:
        raise ConfigError(f"{where}: phases is empty; list at least one phase")
    if len({p.slug for p in phases}) != len(phases):
        raise ConfigError(f"{where}: phases: two phases share a slug")
    evalai = (_evalai(top["evalai"], where, environ) if top.get("evalai") is not None
              else None)
    if evalai is not None:
        missing = [p.slug for p in phases if p.evalai_phase_pk is None]
        if missing:
            raise ConfigError(f"{where}: phases {', '.join(missing)} need evalai_phase_pk "
                              "(the EvalAI phase's id) when evalai is configured")
    inbox = _path(top.get("inbox"), base)
    if evalai is None and inbox is None:
        inbox = base / "inbox"
    publish = _mapping(top.get("publish", {}), f"{where}: publish", {"folder", "github"})
    github = (_github(publish["github"], where, environ) if publish.get("github") is not None
              else None)
    return Settings(
        path=path, challenge=slug, title=str(challenge.get("title") or slug),
        database=_database(top.get("database"), base), phases=phases,
        workers=_workers(top.get("workers", {}), where), evalai=evalai, inbox=inbox,
        publish_folder=_path(publish.get("folder"), base), github=github,
        poll_seconds=_number(top, "poll_seconds", where, 60.0, minimum=1.0),
        workdir=_path(top.get("workdir"), base) or base / "work",
    )


def _phase(raw: Any, index: int, defaults: Mapping[str, Any], base: Path,
           where: str) -> PhaseSettings:
    context = f"{where}: phases[{index}]"
    item = _mapping(raw, context, PHASE_KEYS)
    slug = _text(item, "slug", context)
    context = f"{where}: phase {slug}"
    labels = _path(item.get("labels"), base)
    if labels is None:
        raise ConfigError(f"{context}: labels is missing; give the phase's label folder")
    scoring_raw = {**defaults, **_mapping(item.get("scoring", {}), f"{context}: scoring", None)}
    try:
        scoring = config_from_mapping(scoring_raw)
    except ConfigError as error:
        raise ConfigError(f"{context}: scoring: {error}") from None
    rule = str(item.get("counting_rule", "latest_public"))
    if rule not in ("latest_public", "best"):
        raise ConfigError(f"{context}: counting_rule must be latest_public or best, "
                          f"got {rule!r}")
    hidden = item.get("hidden_tasks", True)
    if not isinstance(hidden, bool):
        raise ConfigError(f"{context}: hidden_tasks must be true or false, got {hidden!r}")
    pk = item.get("evalai_phase_pk")
    if pk is not None and (isinstance(pk, bool) or not isinstance(pk, int)):
        raise ConfigError(f"{context}: evalai_phase_pk must be an integer, got {pk!r}")
    return PhaseSettings(slug=slug, labels=labels, scoring=scoring, counting_rule=rule,
                         hidden_tasks=hidden, evalai_phase_pk=pk)


def _evalai(raw: Any, where: str, environ: Mapping[str, str]) -> EvalAISettings:
    context = f"{where}: evalai"
    item = _mapping(raw, context, EVALAI_KEYS)
    token, source = _secret(item, context, environ)
    labels = {**DEFAULT_LABELS, **_mapping(item.get("labels", {}), f"{context}: labels",
                                           set(DEFAULT_LABELS))}
    pk = item.get("challenge_pk")
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise ConfigError(f"{context}: challenge_pk must be the EvalAI challenge's id, "
                          f"got {pk!r}")
    hosts = item.get("storage_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(f"{context}: storage_hosts must be a list of host names")
    return EvalAISettings(
        url=_text(item, "url", context).rstrip("/"), challenge_pk=pk,
        queue=_text(item, "queue", context), token=token, token_source=source,
        split=str(item.get("split", "test")), storage_hosts=tuple(hosts),
        labels={key: str(value) for key, value in labels.items()},
    )


def _github(raw: Any, where: str, environ: Mapping[str, str]) -> GitHubSettings:
    context = f"{where}: publish.github"
    item = _mapping(raw, context, GITHUB_KEYS)
    token, source = _secret(item, context, environ)
    repo = _text(item, "repo", context)
    if repo.count("/") != 1:
        raise ConfigError(f"{context}: repo must be OWNER/NAME, got {repo!r}")
    return GitHubSettings(
        repo=repo, token=token, token_source=source, branch=str(item.get("branch", "main")),
        folder=str(item.get("folder", "")).strip("/"),
        readme=str(item.get("readme", "README.md")),
        base_url=str(item.get("base_url", "https://api.github.com")).rstrip("/"),
        seconds_between_writes=_number(item, "seconds_between_writes", context, 1.0,
                                       minimum=0.0),
    )


def _workers(raw: Any, where: str) -> WorkerSettings:
    item = _mapping(raw, f"{where}: workers", WORKER_KEYS)
    defaults = WorkerSettings()
    values: dict[str, Any] = {}
    for key in WORKER_KEYS:
        default = getattr(defaults, key)
        value = item.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}: workers.{key} must be a positive number, got {value!r}")
        values[key] = type(default)(value)
    settings = WorkerSettings(**values)
    cores = len(os.sched_getaffinity(0))
    if settings.concurrent * settings.threads > cores:
        raise ConfigError(
            f"{where}: workers.concurrent x workers.threads = "
            f"{settings.concurrent * settings.threads} exceeds the {cores} cores of this "
            "machine; lower one of them so evaluations do not fight over cores"
        )
    return settings


def _secret(item: Mapping[str, Any], context: str,
            environ: Mapping[str, str]) -> tuple[str, str]:
    """(token, where it came from); the token itself never appears in a message."""
    if "token_env" in item:
        name = str(item["token_env"])
        token = environ.get(name, "").strip()
        if not token:
            raise ConfigError(f"{context}: the environment variable {name} (token_env) is "
                              "not set or empty; export the token there")
        return token, f"environment variable {name}"
    if "token_file" in item:
        path = Path(str(item["token_file"]))
        try:
            token = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError):
            raise ConfigError(f"{context}: token_file {path} cannot be read or is empty; put "
                              "the token on its first line (mode 600)") from None
        return token, f"file {path}"
    raise ConfigError(f"{context}: give the token as token_env (an environment variable "
                      "name) or token_file (a file path); never the token itself")


def _database(raw: Any, base: Path) -> str:
    if raw is None:
        return f"sqlite:///{base / 'probeboard.db'}"
    text = str(raw)
    if text.startswith("sqlite:///") and not text.startswith("sqlite:////"):
        return f"sqlite:///{(base / text.removeprefix('sqlite:///')).resolve()}"
    return text


def _mapping(raw: Any, context: str, keys: set[str] | None) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{context} must be a mapping of keys to values")
    if keys is not None:
        for key in raw:
            if key not in keys:
                close = get_close_matches(str(key), sorted(keys), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{context}: unknown key {key!r}{hint}; known: "
                                  f"{', '.join(sorted(keys))}")
    return dict(raw)


def _list(raw: Any, context: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(f"{context} must be a list")
    return raw


def _text(item: Mapping[str, Any], key: str, context: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{context}: {key} is missing or empty")
    return value.strip()


def _number(item: Mapping[str, Any], key: str, context: str, default: float, *,
            minimum: float) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{context}: {key} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _path(raw: Any, base: Path) -> Path | None:
    if raw is None:
        return None
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
