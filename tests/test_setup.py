"""What a newcomer meets first: the Makefile's Python, the shipped configs, the README."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from evaluator.scoring.config import EvaluationConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "evaluator" / "configs"
REFERENCE = ROOT / "tests" / "data" / "reference_configs"
README = (ROOT / "README.md").read_text(encoding="utf-8")

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def fake_python(folder: Path, name: str, version: str) -> Path:
    """A `python` that answers --version and passes the Makefile's check only if 3.11."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    code = 0 if version.startswith("3.11.") else 1
    path.write_text(f'#!/bin/sh\n[ "$1" = --version ] && {{ echo "Python {version}"; exit 0; }}\n'
                    f"exit {code}\n")
    path.chmod(0o755)
    return path


def make(tmp_path: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    env.pop("PYTHON", None)
    env.pop("MAKEFLAGS", None)
    make = shutil.which("make")
    assert make is not None
    return subprocess.run([make, "-s", "-C", str(ROOT), f"VENV={tmp_path / 'venv'}", *args],
                          capture_output=True, text=True, timeout=60, env=env)


@needs_make
def test_makefile_stops_with_one_line_when_python_is_not_311(tmp_path: Path) -> None:
    old = fake_python(tmp_path / "bin", "python3.9", "3.9.18")
    done = make(tmp_path, f"PYTHON={old}", "lint")
    assert done.returncode != 0
    (line, *_) = done.stderr.splitlines()
    assert "needs Python 3.11" in line and str(old) in line and "PYTHON=" in line
    assert not (tmp_path / "venv").exists()  # nothing installed with the wrong Python


@needs_make
def test_makefile_prefers_python311_over_python3(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    fake_python(folder, "python3", "3.12.1")
    good = fake_python(folder, "python3.11", "3.11.9")
    # PATH holds only the fakes: a real python3.11 elsewhere must not be found (and run).
    done = make(tmp_path, "-n", "lint", path=str(folder))
    assert done.returncode == 0, done.stderr
    assert f"{good} -m venv" in done.stdout
    # Without python3.11 it falls back to python3, which the check then refuses.
    good.unlink()
    done = make(tmp_path, "lint", path=str(folder))
    assert done.returncode != 0 and f"PYTHON={folder / 'python3'} is not 3.11" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_sample_configs_ship_with_the_package() -> None:
    shipped = sorted(path.name for path in CONFIGS.glob("*.yaml"))
    reference = sorted(path.name for path in REFERENCE.glob("*.yaml"))
    assert shipped == sorted([*reference, "challenge.yaml"])
    for name in reference:  # the reference's files, unchanged
        assert (CONFIGS / name).read_bytes() == (REFERENCE / name).read_bytes()
    for name in shipped:
        load_config(CONFIGS / name)
        assert f"`{name}`" in README
    assert load_config(CONFIGS / "challenge.yaml") == EvaluationConfig()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "configs/*.yaml" in package_data["package-data"]["evaluator"]


def test_readme_tells_a_newcomer_what_to_expect() -> None:
    for words in ("Python 3.11", "1.8 GB", "0.5 GB",
                  "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
                  "random 10%", "confusion matrix", "## Reading the results"):
        assert words in README, words
