"""The in-repo EvalAI server keeps the platform's quirks (../shared/spec/evalai-api.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.servers.evalai import EvalAIServer, World

Q = "/api/jobs/challenge/queues/probeboard-test/"
DELETE = "/api/jobs/queues/probeboard-test/"
UPDATE = "/api/jobs/challenge/1/update_submission/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put_result(server: EvalAIServer, world: World, pk: int, result: Any,
               **extra: Any) -> requests.Response:
    data = {"submission": pk, "submission_status": "FINISHED", "challenge_phase": 1,
            "result": result if isinstance(result, str) else json.dumps(result), **extra}
    return requests.put(server.url + UPDATE, data=data, headers=bearer(world.host.jwt))


def test_auth_errors(evalai_server: EvalAIServer, evalai_world: World) -> None:
    url = evalai_server.url + Q
    cases = {
        None: {"detail": "Authentication credentials were not provided."},
        "bearer " + evalai_world.host.jwt: {"detail": "Authentication credentials were not "
                                                      "provided."},
        "Bearer": {"detail": "Authorization header must contain two space-delimited values",
                   "code": "bad_authorization_header"},
        "Token nosuch": {"detail": "Invalid token"},
    }
    for header, body in cases.items():
        answer = requests.get(url, headers={"Authorization": header} if header else {})
        assert (answer.status_code, answer.json()) == (401, body)
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    answer = requests.get(url, headers=bearer(evalai_world.host.expiring_token))
    assert answer.json()["code"] == "token_not_valid"  # a Token key as Bearer: JWT 401
    evalai_server.expire_token(evalai_world.host)
    answer = requests.get(url, headers={"Authorization": f"Token "
                                        f"{evalai_world.host.expiring_token}"})
    assert answer.json() == {"detail": "Token has expired"}


def test_unverified_email_is_403(evalai_server: EvalAIServer, evalai_world: World) -> None:
    evalai_world.host.verified = False
    answer = requests.get(evalai_server.url + Q, headers=bearer(evalai_world.host.jwt))
    assert (answer.status_code, answer.json()) == (403, {"detail": "Please verify your email!"})


def test_non_host_401_on_queue_but_400_on_update(evalai_server: EvalAIServer,
                                                 evalai_world: World) -> None:
    who = bearer(evalai_world.participants[0].jwt)
    error = {"error": "Sorry, you are not authorized to access this resource"}
    answer = requests.get(evalai_server.url + Q, headers=who)
    assert (answer.status_code, answer.json()) == (401, error)
    answer = requests.post(evalai_server.url + DELETE, data={"receipt_handle": "x"}, headers=who)
    assert (answer.status_code, answer.json()) == (401, error)
    answer = requests.post(evalai_server.url + DELETE, data={"receipt_handle": ""}, headers=who)
    assert answer.status_code == 400  # the empty-handle check comes first
    answer = requests.patch(evalai_server.url + UPDATE, headers=who,
                            data={"submission": 1, "submission_status": "running"})
    assert (answer.status_code, answer.json()) == (
        400, {"error": "Sorry, you are not authorized to make this request!"})


def test_queue_errors(evalai_server: EvalAIServer, evalai_world: World) -> None:
    host = bearer(evalai_world.host.jwt)
    answer = requests.get(evalai_server.url + "/api/jobs/challenge/queues/nosuch/", headers=host)
    assert answer.json() == {"error": "Challenge with queue name nosuch does not exist"}
    answer = requests.post(evalai_server.url + "/api/jobs/queues/nosuch/", headers=host)
    assert answer.json() == {"error": "Challenge with queue name nosuch does not exists"}
    assert requests.post(evalai_server.url + DELETE, headers=host).status_code == 500
    answer = requests.get(evalai_server.url + Q[:-1], headers=host, allow_redirects=False)
    assert (answer.status_code, answer.headers["Location"]) == (301, Q)


def test_fifo_group_waits_for_its_in_flight_message(evalai_server: EvalAIServer) -> None:
    world = evalai_server.add_default_challenge("probeboard.fifo")
    p = world.participants
    first = evalai_server.submit(p[0], world.phases["dev"], b"1")
    evalai_server.submit(p[0], world.phases["dev"], b"2")
    other = evalai_server.submit(p[1], world.phases["dev"], b"3")
    got = [evalai_server.state.receive("probeboard.fifo") for _ in range(3)]
    assert [g[0]["submission_pk"] if g else None for g in got] == [first.pk, other.pk, None]


def test_submission_and_phase_urls(evalai_server: EvalAIServer, evalai_world: World) -> None:
    sub = evalai_server.submit(evalai_world.participants[0], evalai_world.phases["dev"], b"x")
    url = evalai_server.url
    assert requests.get(f"{url}/api/jobs/submission/{sub.pk}/",
                        headers=bearer(evalai_world.host.jwt)).status_code == 404
    as_host = requests.get(f"{url}/api/jobs/submission/{sub.pk}",
                           headers=bearer(evalai_world.host.jwt)).json()
    as_owner = requests.get(f"{url}/api/jobs/submission/{sub.pk}",
                            headers=bearer(evalai_world.participants[0].jwt)).json()
    assert set(as_host) - set(as_owner) == {"environment_log_file"}
    assert as_host["submission_metadata"] == [] and as_host["execution_time"] == "None"
    other = requests.get(f"{url}/api/jobs/submission/{sub.pk}",
                         headers=bearer(evalai_world.participants[1].jwt))
    assert other.status_code == 401
    assert requests.get(as_host["input_file"]).content == b"x"  # no auth on /media/
    redirect = requests.get(f"{url}/api/challenges/challenge/phase/2", allow_redirects=False)
    assert redirect.status_code == 301
    assert requests.get(f"{url}/api/challenges/challenge/phase/2").json()["codename"] == "final"
    missing = requests.get(f"{url}/api/challenges/challenge/phase/9/")
    assert (missing.status_code, missing.json()) == (404, {"detail": "ChallengePhase 9 does "
                                                                     "not exist"})


@pytest.mark.parametrize(("result", "message"), [
    ("", "`result` key contains invalid data with error Expecting value: line 1 column 1 "
         "(char 0).Please try again with correct format."),
    ([{"split": "nosuch", "accuracies": {}}],
     "Challenge Phase Split does not exist with phase_id: 1 andsplit codename: nosuch"),
    ([{"split": "test", "accuracies": {"Nope": 1}}],
     "Following metrics are missing in theleaderboard data: ['Nope']"),
    ([{"split": "test", "accuracies": {"Rank": "1", "Mean Q": None}}],
     "Values for following metrics are not offloat/int: [('Rank', <class 'str'>), "
     "('Mean Q', <class 'NoneType'>)]"),
])
def test_result_checks(evalai_server: EvalAIServer, evalai_world: World, result: Any,
                       message: str) -> None:
    sub = evalai_server.submit(evalai_world.participants[0], evalai_world.phases["dev"], b"x")
    answer = put_result(evalai_server, evalai_world, sub.pk, result)
    assert (answer.status_code, answer.json()) == (400, {"error": message})
    assert evalai_server.submission(sub.pk).status == "submitted"


def test_put_has_no_state_guard_and_updates_in_place(evalai_server: EvalAIServer,
                                                     evalai_world: World) -> None:
    sub = evalai_server.submit(evalai_world.participants[0], evalai_world.phases["dev"], b"x")
    for rank in (2, 1):
        answer = put_result(evalai_server, evalai_world, sub.pk,
                            [{"split": "test", "show_to_participant": True,
                              "accuracies": {"Rank": rank}}])
        assert answer.json() == {"success": "Submission result has been successfully updated"}
    board = evalai_server.leaderboard(evalai_world.phase_splits["dev"])
    assert [(e["id"], e["result"]) for e in board] == [(1, [1, "#", "#"])]
    result_url = requests.get(f"{evalai_server.url}/api/jobs/submission/{sub.pk}",
                              headers=bearer(evalai_world.host.jwt)).json()
    assert requests.get(result_url["submission_result_file"]).text == "[{'Rank': 1}]"


def test_leaderboard_order_one_entry_per_team_and_baselines(evalai_server: EvalAIServer,
                                                            evalai_world: World) -> None:
    p1, p2 = evalai_world.participants
    dev = evalai_world.phases["dev"]

    def finished(user: Any, rank: float | None, **options: Any) -> int:
        sub = evalai_server.submit(user, dev, b"x", **options)
        accuracies = {"Mean Q": 1.0} if rank is None else {"Rank": rank}
        put_result(evalai_server, evalai_world, sub.pk, [{"split": "test",
                                                          "accuracies": accuracies}])
        return sub.pk

    a = finished(p1, 0.5)
    finished(p1, 3)  # the team's worse entry: dropped
    b = finished(p2, 2)
    finished(p2, 0.1, is_public=False)  # private on a public split: hidden
    baseline = finished(p1, 5)
    evalai_server.submission(baseline).is_baseline = True  # under its team's 0.5: dropped
    board = [e["submission__id"] for e in
             evalai_server.leaderboard(evalai_world.phase_splits["dev"])]
    assert board == [a, b]
    no_rank = finished(p2, None)  # a missing Rank counts as 0 and sorts first
    board = evalai_server.leaderboard(evalai_world.phase_splits["dev"])
    assert board[0]["submission__id"] == no_rank and board[0]["filtering_score"] == 0.0
    page = requests.get(f"{evalai_server.url}/api/jobs/challenge_phase_split/1/leaderboard/"
                        "?page_size=1").json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]


def test_injected_faults(evalai_server: EvalAIServer, evalai_world: World) -> None:
    host = bearer(evalai_world.host.jwt)
    evalai_server.fail("queue_receive", times=2, status=502)
    codes = [requests.get(evalai_server.url + Q, headers=host).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    evalai_server.drop("queue_receive")
    with pytest.raises(requests.ConnectionError):
        requests.get(evalai_server.url + Q, headers=host)
    evalai_server.enable_throttle(limit=1, period=60)
    requests.get(evalai_server.url + Q, headers=host)
    answer = requests.get(evalai_server.url + Q, headers=host)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 59
    assert answer.json()["detail"].startswith("Request was throttled. Expected available in")
