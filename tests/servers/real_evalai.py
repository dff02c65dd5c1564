"""The real EvalAI server (../shared/evalai-real) and the participants' real `evalai` CLI,
as pytest fixtures (registered in tests/conftest.py) and helpers.

The server is booted once per session with boot.sh (about 20-90 s warm, 4.5 min cold);
without Python 3.9 or when the boot fails, the tests that use it skip and say why.
Deselect them with `-m "not real_evalai"`. The server keeps its data while it runs, so a
test that needs clean leaderboards makes its own challenge (`new_real_challenge`).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from evaluator.clients.evalai import EvalAIClient
from evaluator.clients.retry import RetryPolicy

# CI clones the project beside ../shared; PROBEBOARD_EVALAI_REAL_DIR overrides.
TOOLS = Path(os.environ.get("PROBEBOARD_EVALAI_REAL_DIR",
                            Path(__file__).resolve().parents[3] / "shared" / "evalai-real"))
RUNTIME = Path(os.environ.get("EVALAI_REAL_RUNTIME", "/tmp/evalai-real"))
BOOT_TIMEOUT = 420  # seconds: a cold boot builds three venvs
CHALLENGE_SCRIPT = Path(__file__).with_name("real_evalai_challenge.py")


@dataclass
class Target:
    """One server and the fixture data both kinds share (same pks on a fresh in-repo one)."""

    name: str
    url: str
    host: str  # host1's JWT
    participants: list[str]  # participant JWTs
    queue: str = "probeboard-test"
    challenge: int = 1
    phase: int = 1  # dev
    phase_split: int = 1

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return self.request("GET", path, token, **kw)

    def request(self, method: str, path: str, token: str | None = None,
                **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def client(self) -> EvalAIClient:
        return EvalAIClient(self.url, self.host, challenge_pk=self.challenge, queue=self.queue,
                            policy=RetryPolicy(attempts=2, base=0.05), timeout=30)


def python39() -> str | None:
    """EVALAI_REAL_PY39, python3.9 on the PATH, or a pyenv 3.9: the first that runs."""
    candidates = [os.environ.get("EVALAI_REAL_PY39"), shutil.which("python3.9"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))]
    for candidate in filter(None, candidates):
        # a pyenv shim exists on PATH even when no 3.9 is selected: check that it runs
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="session")
def real_evalai() -> Target:
    """The booted real server with the boot fixture's challenge 1 (phase dev)."""
    found = python39()
    if found is None:
        pytest.skip("the real EvalAI server needs Python 3.9 (python3.9 or EVALAI_REAL_PY39); "
                    "none found")
    if not (TOOLS / "boot.sh").exists():
        pytest.skip(f"no boot.sh in {TOOLS} (set PROBEBOARD_EVALAI_REAL_DIR)")
    try:
        boot = subprocess.run(["bash", str(TOOLS / "boot.sh")], capture_output=True,
                              text=True, timeout=BOOT_TIMEOUT,
                              env={**os.environ, "EVALAI_REAL_PY39": found})
    except subprocess.TimeoutExpired:
        pytest.skip(f"the real EvalAI server did not boot within {BOOT_TIMEOUT} s")
    printed = dict(re.findall(r"^(EVALAI_URL|EVALAI_FIXTURES)=(.+)$", boot.stdout, re.M))
    if boot.returncode != 0 or len(printed) != 2:
        tail = (boot.stderr or boot.stdout).strip().splitlines()[-3:]
        pytest.skip(f"the real EvalAI server did not boot: {' | '.join(tail)}")
    fixtures = json.loads(Path(printed["EVALAI_FIXTURES"]).read_text())
    return Target("real", printed["EVALAI_URL"], fixtures["host"]["jwt"],
                  [p["jwt"] for p in fixtures["participants"]], fixtures["queue_name"],
                  fixtures["challenge_pk"], fixtures["phase_pks"]["dev"],
                  fixtures["challenge_phase_split_pks"]["dev"])


@pytest.fixture(scope="session")
def cli_ready(request: pytest.FixtureRequest) -> None:
    """The real CLI's venv, which boot.sh builds (so it may boot the real server)."""
    if not (RUNTIME / "cli-venv" / "bin" / "python").exists():
        request.getfixturevalue("real_evalai")
    if not (RUNTIME / "cli-venv" / "bin" / "python").exists():
        pytest.skip(f"the real evalai CLI venv is missing ({RUNTIME / 'cli-venv'})")


def run_cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The participants' `evalai` CLI with its own HOME (host URL and token live there)."""
    return subprocess.run(["bash", str(TOOLS / "evalai-cli.sh"), *args], input=stdin,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EVALAI_CLI_HOME": str(home),
                               "EVALAI_REAL_RUNTIME": str(RUNTIME)})


def new_real_challenge(tag: str, tasks: list[str], out: Path) -> dict[str, Any]:
    """A fresh challenge on the booted real server (real_evalai_challenge.py, run with the
    environment boot.sh gives its own fixtures script); what it wrote to `out`."""
    port = os.environ.get("EVALAI_REAL_PORT", "58000")
    env = {
        **os.environ, "PYTHONPATH": str(TOOLS), "DJANGO_SETTINGS_MODULE": "localsettings",
        "EVALAI_REAL_RUNTIME": str(RUNTIME), "EVALAI_REAL_PORT": port,
        "POSTGRES_HOST": str(RUNTIME / "pg" / "sock"),
        "POSTGRES_PORT": os.environ.get("EVALAI_REAL_PG_PORT", "55432"),
        "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "unused", "POSTGRES_NAME": "evalai",
        "AWS_SQS_ENDPOINT": f"http://127.0.0.1:{os.environ.get('EVALAI_REAL_SQS_PORT', '59324')}",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost", "PYTHONPYCACHEPREFIX": str(RUNTIME / "pycache"),
    }
    made = subprocess.run([str(RUNTIME / "venv" / "bin" / "python"), str(CHALLENGE_SCRIPT),
                           tag, ",".join(tasks), str(out)], cwd=RUNTIME / "EvalAI", env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr[-2000:]
    return dict(json.loads(out.read_text()))
