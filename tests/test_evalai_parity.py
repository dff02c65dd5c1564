"""The in-repo EvalAI server answers like the real one (../shared/evalai-real), and the
participants' real `evalai` CLI submits to both.

The real server comes from tests/servers/real_evalai.py (booted once per session; the
tests skip and say why without Python 3.9). It is shared and keeps its data between runs,
so the tests compare status codes, error bodies and JSON key sets, never pks or orderings.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from evaluator.clients.evalai import QueueMessage
from tests.servers.evalai import EvalAIServer
from tests.servers.real_evalai import Target, new_real_challenge, run_cli

pytestmark = pytest.mark.real_evalai


@pytest.fixture
def in_repo(evalai_server: EvalAIServer) -> Target:
    world = evalai_server.add_default_challenge()
    evalai_server.set_visibility_timeout(30)  # as SQS's default on the real server
    return Target("in-repo", evalai_server.url, world.host.jwt,
                  [p.jwt for p in world.participants])


@pytest.fixture
def both(real_evalai: Target, in_repo: Target) -> list[Target]:
    return [real_evalai, in_repo]


def same(answers: list[requests.Response], body: bool = True) -> Any:
    """Both answered the same status (and the same JSON body); return the real one's."""
    real, ours = answers
    assert real.status_code == ours.status_code, (real.text[:300], ours.text[:300])
    if body:
        assert real.json() == ours.json()
    return real


def same_keys(real: Any, ours: Any) -> None:
    assert sorted(real) == sorted(ours)


def upload(target: Target, participant: int = 0, **form: str) -> requests.Response:
    """The multipart POST the CLI's `submit` sends."""
    return target.request(
        "POST", f"/api/jobs/challenge/{target.challenge}/challenge_phase/{target.phase}"
        "/submission/", target.participants[participant],
        files={"input_file": ("answer.csv", b"id,x\n1,0.5\n")},
        data={"status": "submitting", "submission_metadata": "[]", **form})


def receive_for(target: Target, submission: int, tries: int = 20) -> QueueMessage:
    """Receive until this submission's message comes; others stay invisible for 30 s."""
    client = target.client()
    for _ in range(tries):
        message = client.receive_message()
        if message is None:
            break
        if message.submission_pk == submission:
            return message
    raise AssertionError(f"{target.name}: no message for submission {submission}")


def drain(target: Target) -> None:
    """Delete what the queue holds now: left undeleted, a message comes back 30 s later."""
    client = target.client()
    for _ in range(50):
        message = client.receive_message()
        if message is None:
            return
        client.delete_message(message.receipt_handle)


def empty_queue_answers(both: list[Target], tries: int = 5) -> list[requests.Response]:
    """Both servers' answer to a receive on an empty queue. The real server's queue is
    shared (every challenge, every test session): a message another receive left in flight
    may come back between the drain and the receive, so drain and ask again."""
    for _ in range(tries):
        for target in both:
            drain(target)
        answers = [t.get(f"/api/jobs/challenge/queues/{t.queue}/", t.host) for t in both]
        if all(answer.ok and answer.json().get("body") is None for answer in answers):
            return answers
    raise AssertionError(f"the queues never came up empty in {tries} tries")


def test_queue_empty_and_errors(both: list[Target]) -> None:
    answer = same(empty_queue_answers(both))
    assert answer.json() == {"body": None, "receipt_handle": None}
    same([t.get(f"/api/jobs/challenge/queues/{t.queue}/", t.participants[0]) for t in both])
    same([t.get("/api/jobs/challenge/queues/nosuch/", t.host) for t in both])
    same([t.request("POST", "/api/jobs/queues/nosuch/", t.host) for t in both])
    same([t.request("POST", f"/api/jobs/queues/{t.queue}/", t.host,
                    data={"receipt_handle": ""}) for t in both])
    for data in ({}, {"receipt_handle": "garbage"}):  # 500, an HTML page on both
        same([t.request("POST", f"/api/jobs/queues/{t.queue}/", t.host, data=data)
              for t in both], body=False)
    same([t.get(f"/api/jobs/challenge/queues/{t.queue}", t.host, allow_redirects=False)
          for t in both], body=False)


def test_auth_errors(both: list[Target]) -> None:
    path = "/api/jobs/challenge/queues/probeboard-test/"
    for header in (None, "Bearer", "Bearer garbage", "Token garbage", "bearer x"):
        headers = {"Authorization": header} if header else {}
        answer = same([t.get(path, headers=dict(headers)) for t in both])
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_phase(both: list[Target]) -> None:
    real, ours = (t.get(f"/api/challenges/challenge/phase/{t.phase}/") for t in both)
    assert real.status_code == ours.status_code == 200
    same_keys(real.json(), ours.json())
    redirects = same([t.get(f"/api/challenges/challenge/phase/{t.phase}", allow_redirects=False)
                      for t in both], body=False)
    assert redirects.status_code == 301
    same([t.get("/api/challenges/challenge/phase/987654/") for t in both])
    real, ours = (t.get(f"/api/challenges/challenge/{t.challenge}/challenge_phase/{t.phase}")
                  for t in both)
    assert real.status_code == ours.status_code == 200
    same_keys(real.json(), ours.json())


def test_submission_lifecycle(both: list[Target]) -> None:
    created = [upload(t) for t in both]
    assert [c.status_code for c in created] == [201, 201]
    same_keys(*(c.json() for c in created))
    pks = [c.json()["id"] for c in created]
    for t, pk in zip(both, pks, strict=True):
        message = receive_for(t, pk)
        assert isinstance(message.body["phase_pk"], str)
        assert isinstance(message.body["submission_pk"], int)
    as_host = [t.get(f"/api/jobs/submission/{pk}", t.host) for t, pk in zip(both, pks,
                                                                             strict=True)]
    same_keys(*(a.json() for a in as_host))
    as_owner = [t.get(f"/api/jobs/submission/{pk}", t.participants[0])
                for t, pk in zip(both, pks, strict=True)]
    same_keys(*(a.json() for a in as_owner))
    assert "environment_log_file" not in as_owner[0].json()
    same([t.get(f"/api/jobs/submission/{pk}", t.participants[1])
          for t, pk in zip(both, pks, strict=True)])
    same([t.get(f"/api/jobs/submission/{pk}/", t.host) for t, pk in zip(both, pks, strict=True)],
         body=False)
    update = "/api/jobs/challenge/{}/update_submission/"

    def send(method: str, token_of: str = "host", **data: Any) -> list[requests.Response]:
        return [t.request(method, update.format(t.challenge), getattr(t, token_of)
                          if token_of == "host" else t.participants[0],
                          data={"submission": pk, **data})
                for t, pk in zip(both, pks, strict=True)]

    patched = send("PATCH", submission_status="RUNNING", job_name="Parity-A")
    assert [p.status_code for p in patched] == [200, 200]
    same_keys(*(p.json() for p in patched))
    assert [p.json()["job_name"] for p in patched] == [["parity-a"]] * 2
    same(send("PATCH", submission_status="finished"))
    same(send("PATCH", token_of="participant", submission_status="running"))
    good = {"split": "test", "show_to_participant": True,
            "accuracies": {"Rank": 1, "Weighted score": 1.5, "Mean Q": 10.0}}
    for result in ("", "not json", [{"split": "nosuch", "accuracies": {}}],
                   [{"split": "test", "accuracies": {"Nope": 1}}],
                   [{"split": "test", "accuracies": {"Rank": "1"}}], [good]):
        same(send("PUT", submission_status="FINISHED", challenge_phase=1,
                  result=result if isinstance(result, str) else json.dumps(result)))
    same(send("PUT", submission_status="RUNNING"))
    same([t.request("PUT", update.format(t.challenge), t.host,
                    data={"submission": 987654, "submission_status": "FINISHED"})
          for t in both])
    done = [t.get(f"/api/jobs/submission/{pk}", t.participants[0])
            for t, pk in zip(both, pks, strict=True)]
    assert [d.json()["status"] for d in done] == ["finished"] * 2
    results = [requests.get(d.json()["submission_result_file"], timeout=30).text for d in done]
    assert results[0] == results[1] == "[{'Rank': 1, 'Weighted score': 1.5, 'Mean Q': 10.0}]"
    boards = [t.get(f"/api/jobs/challenge_phase_split/{t.phase_split}/leaderboard/")
              for t in both]
    same_keys(*(b.json() for b in boards))
    entries = [b.json()["results"] for b in boards]
    assert entries[0] and entries[1]
    same_keys(entries[0][0], entries[1][0])


@pytest.mark.usefixtures("cli_ready")
def test_real_cli_submits_to_both(both: list[Target], tmp_path: Path) -> None:
    answer = tmp_path / "answer.csv"
    answer.write_text("id,score\n1,0.5\n2,0.7\n")
    for target in both:
        home = tmp_path / target.name
        assert run_cli(home, "host", "-sh", target.url).returncode == 0
        assert run_cli(home, "set_token", target.participants[0]).returncode == 0
        submitted = run_cli(home, "challenge", str(target.challenge), "phase",
                         str(target.phase), "submit", "--file", str(answer), stdin="n\n")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        pk = int(re.search(r"with the ID (\d+) is successfully submitted", submitted.stdout)[1])
        message = receive_for(target, pk)
        client = target.client()
        submission = client.get_submission(pk)
        assert submission["submission_metadata"] == []
        client.download(submission["input_file"], tmp_path / f"{target.name}.csv",
                        max_bytes=1000, timeout=30)
        assert (tmp_path / f"{target.name}.csv").read_bytes() == answer.read_bytes()
        shown = run_cli(home, "submission", str(pk))
        assert shown.returncode == 0 and "Submission Status : submitted" in shown.stdout
        client.set_finished(pk, message.phase_pk, [{"split": "test", "accuracies": {"Rank": 2}}])
        result = run_cli(home, "submission", str(pk), "result")
        assert result.returncode == 0 and "[{'Rank': 2}]" in result.stdout, result.stdout
        client.delete_message(message.receipt_handle)


def test_update_edge_cases(both: list[Target]) -> None:
    pks = [upload(t, participant=1).json()["id"] for t in both]
    update = "/api/jobs/challenge/{}/update_submission/"

    def send(method: str, as_json: bool = False, **data: Any) -> list[requests.Response]:
        key = "json" if as_json else "data"
        return [t.request(method, update.format(t.challenge), t.host,
                          **{key: {"submission": pk, **data}})
                for t, pk in zip(both, pks, strict=True)]

    same([t.request("PATCH", update.format(t.challenge), t.host,
                    data={"submission_status": "running"}) for t in both])  # pk None: 404
    entry = {"split": "test", "accuracies": {"Rank": 1}}
    # a JSON array object, not a string: TypeError -> 400 with Python's message
    same(send("PUT", as_json=True, submission_status="FINISHED", challenge_phase=1,
              result=[entry]))
    for body in ({"result": json.dumps([{"split": "test", "accuracies": None}])},
                 {"result": json.dumps({"split": "test"})}):
        same(send("PUT", submission_status="FINISHED", challenge_phase=1, **body), body=False)
    same(send("PUT", as_json=True, submission_status="FAILED", stdout=None), body=False)
    same(send("PUT", submission_status="FINISHED", result=json.dumps([entry])))  # no phase
    same(send("PUT", submission_status="FAILED", stderr="boom"))
    token_scheme = [t.get(f"/api/jobs/challenge/queues/{t.queue}/",
                          headers={"Authorization": "Token " + "0" * 40}) for t in both]
    same(token_scheme)


def test_a_tie_on_the_sort_key_lists_the_newest_result_first(
        real_evalai: Target, in_repo: Target, tmp_path: Path) -> None:
    """EvalAI takes the results newest first, then sorts them stably by the key: of two
    teams tied on Rank, the one whose result came last is listed first, and a re-PUT (an
    update in place) does not move it. Challenge 1's boards hold other tests' results, so
    the real server gets a fresh challenge."""
    made = new_real_challenge(f"tie-{uuid.uuid4().hex[:12]}", [], tmp_path / "challenge.json")
    fresh = Target("real", real_evalai.url, real_evalai.host,
                   [p["jwt"] for p in made["participants"]], made["queue"],
                   made["challenge_pk"], made["phase_pks"]["dev"],
                   made["phase_split_pks"]["dev"])
    boards = []
    for target in (fresh, in_repo):
        first, second = (upload(target, participant=i).json()["id"] for i in (0, 1))
        for pk in (first, second, first):
            target.client().set_finished(pk, target.phase, [
                {"split": "test", "accuracies": {"Rank": 1, "Weighted score": 1.0,
                                                 "Mean Q": 1.0}}])
        entries = target.get(f"/api/jobs/challenge_phase_split/{target.phase_split}"
                             "/leaderboard/").json()["results"]
        boards.append([e["submission__id"] for e in entries])
        assert boards[-1] == [second, first], target.name


def test_host_marks_a_baseline_and_cancels_a_finished_result(both: list[Target]) -> None:
    """What `probeboard baseline` and `probeboard hide` send (evaluator/clients/evalai.py)."""
    pks = [upload(t).json()["id"] for t in both]
    clients = [t.client() for t in both]
    for baseline in (True, False):
        answers = [c.set_baseline(pk, baseline) for c, pk in zip(clients, pks, strict=True)]
        same_keys(*answers)
        assert [a["is_baseline"] for a in answers] == [baseline] * 2
    meta = "/api/jobs/challenges/{}/submissions/{}/update_submission_meta/"

    def patch(token: str, pk_of: list[int], **data: Any) -> list[requests.Response]:
        return [t.request("PATCH", meta.format(t.challenge, pk),
                          t.host if token == "host" else t.participants[1], data=data)
                for t, pk in zip(both, pk_of, strict=True)]

    same(patch("host", pks, is_baseline="maybe"))  # 400 naming the field
    same(patch("host", [987654, 987654], is_baseline="true"))  # 404
    foreign = same(patch("other team", pks, is_baseline="true"), body=False)
    assert foreign.status_code == 404 and foreign.json() == {
        "error": f"Submission {pks[0]} does not exist"}  # not their team's submission
    entry = [{"split": "test", "accuracies": {"Rank": 1, "Weighted score": 1.0, "Mean Q": 5.0}}]
    for target, client, pk in zip(both, clients, pks, strict=True):
        client.set_finished(pk, target.phase, entry)
        client.set_cancelled(pk, "taken off")
    shown = [c.get_submission(pk) for c, pk in zip(clients, pks, strict=True)]
    assert [s["status"] for s in shown] == ["cancelled"] * 2
    for target, pk in zip(both, pks, strict=True):
        board = target.get(f"/api/jobs/challenge_phase_split/{target.phase_split}"
                           "/leaderboard/?page_size=1000").json()["results"]
        assert pk not in [e["submission__id"] for e in board]
