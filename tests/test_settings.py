"""The daemon's settings file: the shipped example loads, secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluator.daemon.settings import load_settings
from evaluator.support.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "probeboard.example.yaml"
ENVIRON = {"EVALAI_TOKEN": "evalai-secret-1234", "GITHUB_TOKEN": "gh-secret-5678"}


def test_the_shipped_example_loads() -> None:
    settings = load_settings(EXAMPLE, environ=ENVIRON)
    assert [phase.slug for phase in settings.phases] == ["dev"]
    assert settings.phases[0].scoring.k_folds == 40  # the phase overrides the default 200
    assert settings.evalai is not None and settings.evalai.queue == "embed-2026-queue"
    assert settings.github is not None and settings.github.repo == "owner/name"
    assert "secret" not in repr(settings)  # tokens never print


def test_a_missing_token_names_the_variable_not_a_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE, environ={"GITHUB_TOKEN": "gh"})
    assert "EVALAI_TOKEN" in str(caught.value) and "export" in str(caught.value)


def test_a_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    text = EXAMPLE.read_text().replace("token_env: EVALAI_TOKEN", f"token_file: {token}")
    path = tmp_path / "probeboard.yaml"
    path.write_text(text)
    settings = load_settings(path, environ={"GITHUB_TOKEN": "gh"})
    assert settings.evalai is not None and settings.evalai.token == "from-a-file"
    assert settings.evalai.token_source == f"file {token}"


def test_more_threads_than_cores_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "probeboard.yaml"
    path.write_text(EXAMPLE.read_text().replace("concurrent: 1,", "concurrent: 64,"))
    with pytest.raises(ConfigError, match=r"exceeds the .* cores"):
        load_settings(path, environ=ENVIRON)
