"""The EvalAI client against the in-repo server over real loopback HTTP (no patching)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from evaluator.clients.evalai import DeleteResult, EvalAIClient
from evaluator.clients.retry import RetryPolicy
from evaluator.support.errors import ServiceAuthError, ServiceError, SubmissionError
from tests.servers.evalai import EvalAIServer, World

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.02, retry_after_cap=0.5, total=5.0)
RESULT = [{"split": "test", "show_to_participant": True,
           "accuracies": {"Rank": 1, "Weighted score": 1.5, "Mean Q": 10.0}}]


def client_for(server: EvalAIServer, world: World, token: str | None = None,
               **options: object) -> EvalAIClient:
    options.setdefault("policy", FAST)
    options.setdefault("timeout", 2.0)
    return EvalAIClient(server.url, token or world.host.jwt, challenge_pk=world.challenge.pk,
                        queue=world.challenge.queue, token_source="EVALAI_AUTH_TOKEN",
                        **options)  # type: ignore[arg-type]


@pytest.fixture
def client(evalai_server: EvalAIServer, evalai_world: World) -> EvalAIClient:
    return client_for(evalai_server, evalai_world)


def test_one_submission_end_to_end(evalai_server: EvalAIServer, evalai_world: World,
                                   client: EvalAIClient, tmp_path: Path) -> None:
    assert client.receive_message() is None
    sub = evalai_server.submit(evalai_world.participants[0], evalai_world.phases["dev"],
                               b"id,x\n1,0.5\n")
    message = client.receive_message()
    assert message is not None
    assert (message.submission_pk, message.challenge_pk, message.phase_pk) == (sub.pk, 1, 1)
    assert message.body["phase_pk"] == "1"  # as sent, strings
    submission = client.get_submission(message.submission_pk)
    assert submission["challenge_phase"] == message.phase_pk
    assert client.set_running(sub.pk, job_name="Worker-A")["job_name"] == ["worker-a"]
    size = client.download(submission["input_file"], tmp_path / "in.csv", max_bytes=100,
                           timeout=5)
    assert size == 11 and (tmp_path / "in.csv").read_bytes() == b"id,x\n1,0.5\n"
    client.set_finished(sub.pk, message.phase_pk, RESULT, stdout="ok", metadata={"v": 1})
    board = evalai_server.leaderboard(evalai_world.phase_splits["dev"])
    assert [e["submission__id"] for e in board] == [sub.pk]
    assert board[0]["result"] == [1, 1.5, 10.0]
    assert client.delete_message(message.receipt_handle) is DeleteResult.DELETED
    assert evalai_server.pending_messages() == []


def test_int_ids_of_a_rerun_are_accepted(evalai_server: EvalAIServer, evalai_world: World,
                                         client: EvalAIClient) -> None:
    sub = evalai_server.submit(evalai_world.participants[0], evalai_world.phases["final"], b"x")
    client.delete_message(client.receive_message().receipt_handle)  # type: ignore[union-attr]
    evalai_server.requeue(sub)
    message = client.receive_message()
    assert message is not None and message.body["phase_pk"] == 2 and message.phase_pk == 2


def test_redelivery_comes_with_a_new_receipt_handle(evalai_server: EvalAIServer,
                                                    evalai_world: World,
                                                    client: EvalAIClient) -> None:
    import time

    evalai_server.submit(evalai_world.participants[0], evalai_world.phases["dev"], b"x")
    first = client.receive_message()
    assert first is not None and client.receive_message() is None  # invisible for now
    time.sleep(0.35)
    again = client.receive_message()
    assert again is not None and again.body == first.body
    assert again.receipt_handle != first.receipt_handle
    assert client.delete_message(again.receipt_handle) is DeleteResult.DELETED


def test_delete_with_a_garbage_handle_is_maybe_gone(client: EvalAIClient,
                                                    evalai_server: EvalAIServer) -> None:
    assert client.delete_message("garbage") is DeleteResult.MAYBE_GONE
    assert evalai_server.calls("queue_delete") == 1  # a 500 on delete is not retried


def test_5xx_is_retried_then_succeeds(client: EvalAIClient, evalai_server: EvalAIServer) -> None:
    evalai_server.fail("queue_receive", times=2, status=502)
    assert client.receive_message() is None
    assert evalai_server.calls("queue_receive") == 3


def test_5xx_past_the_attempts_is_a_retryable_service_error(
        client: EvalAIClient, evalai_server: EvalAIServer) -> None:
    evalai_server.fail("submission", times=10, status=503)
    with pytest.raises(ServiceError) as caught:
        client.get_submission(1)
    assert caught.value.retryable and caught.value.status == 503
    assert evalai_server.calls("submission") == FAST.attempts


def test_dropped_connection_and_slow_answer_are_retried(
        evalai_server: EvalAIServer, evalai_world: World,
        caplog: pytest.LogCaptureFixture) -> None:
    client = client_for(evalai_server, evalai_world, timeout=0.3)
    sub = evalai_server.submit(evalai_world.participants[0], evalai_world.phases["dev"], b"x")
    evalai_server.drop("submission")
    evalai_server.slow("submission", 0.6)
    assert client.get_submission(sub.pk)["id"] == sub.pk
    retries = [r.getMessage() for r in caplog.records if r.name == "evaluator.clients.retry"]
    assert len(retries) == 2
    assert "connection failed" in retries[0] and "timed out" in retries[1]


def test_429_waits_for_retry_after(evalai_server: EvalAIServer, evalai_world: World,
                                   caplog: pytest.LogCaptureFixture) -> None:
    evalai_server.enable_throttle(limit=2, period=0.4)
    client = client_for(evalai_server, evalai_world,
                        policy=RetryPolicy(attempts=3, base=0.01, retry_after_cap=0.3))
    with caplog.at_level(logging.WARNING, logger="evaluator.clients.retry"):
        for _ in range(3):
            assert client.receive_message() is None
    # Retry-After says 1 s (DRF rounds up); the cap of 0.3 s bounds the wait
    waits = [r.getMessage() for r in caplog.records if "429" in r.getMessage()]
    assert waits and all(w.endswith("in 0.30 s") for w in waits), waits
    assert [r.status for r in evalai_server.requests].count(429) >= 1


def test_429_past_the_attempts_carries_retry_after(evalai_server: EvalAIServer,
                                                   evalai_world: World) -> None:
    evalai_server.enable_throttle(limit=1, period=60)
    client = client_for(evalai_server, evalai_world,
                        policy=RetryPolicy(attempts=2, retry_after_cap=0.01))
    client.receive_message()
    with pytest.raises(ServiceError) as caught:
        client.receive_message()
    assert caught.value.status == 429 and caught.value.retryable
    assert caught.value.retry_after is not None and caught.value.retry_after >= 59


def test_expired_token_is_an_auth_alert_naming_the_setting_not_the_token(
        evalai_server: EvalAIServer, evalai_world: World, client: EvalAIClient,
        caplog: pytest.LogCaptureFixture) -> None:
    evalai_server.expire_token(evalai_world.host)
    with caplog.at_level(logging.DEBUG), pytest.raises(ServiceAuthError) as caught:
        client.receive_message()
    message = str(caught.value)
    assert "EVALAI_AUTH_TOKEN" in message and "renew" in message
    assert evalai_world.host.jwt not in message
    assert evalai_server.calls("queue_receive") == 1  # the operator must act: no retry


def test_participant_token_is_not_a_host(evalai_server: EvalAIServer, evalai_world: World
                                         ) -> None:
    client = client_for(evalai_server, evalai_world, evalai_world.participants[0].jwt)
    with pytest.raises(ServiceAuthError, match="host of challenge 1"):
        client.receive_message()  # 401 on the queue
    with pytest.raises(ServiceAuthError, match="host of challenge 1") as caught:
        client.set_failed(1, "x")  # 400 on update_submission
    assert caught.value.status == 400


def test_expiring_token_scheme(evalai_server: EvalAIServer, evalai_world: World) -> None:
    client = client_for(evalai_server, evalai_world, evalai_world.host.expiring_token,
                        scheme="Token")
    assert client.receive_message() is None


def test_rejected_result_is_not_retried(evalai_server: EvalAIServer, evalai_world: World,
                                        client: EvalAIClient) -> None:
    sub = evalai_server.submit(evalai_world.participants[0], evalai_world.phases["dev"], b"x")
    bad = [{"split": "nosuch", "accuracies": {"Rank": 1}}]
    with pytest.raises(ServiceError, match="andsplit codename: nosuch") as caught:
        client.set_finished(sub.pk, 1, bad)
    assert not caught.value.retryable and caught.value.status == 400
    with pytest.raises(ValueError, match="finite"):
        client.set_finished(sub.pk, 1, [{"split": "test", "accuracies": {"Rank": float("nan")}}])


def test_token_never_in_logs_or_errors(evalai_server: EvalAIServer, evalai_world: World,
                                       caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    token = evalai_world.host.jwt
    client = client_for(evalai_server, evalai_world)
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        evalai_server.fail("queue_receive", times=2)
        client.receive_message()
        evalai_server.fail("submission", times=10)
        evalai_server.drop("queue_receive", times=10)
        url = evalai_server.put_media("x.csv", b"y" * 100)
        evalai_server.truncate(times=10)
        for call in (lambda: client.get_submission(1), lambda: client.receive_message(),
                     lambda: client.download(url, tmp_path / "f", 1000, 2)):
            with pytest.raises(ServiceError) as caught:
                call()
            errors.append(str(caught.value))
        evalai_server.clear_faults()
        evalai_server.expire_token(evalai_world.host)
        with pytest.raises(ServiceAuthError) as caught:
            client.receive_message()
        errors.append(str(caught.value))
    assert caplog.records, "the retries were logged"
    assert token not in caplog.text and token not in " ".join(errors)
    assert token not in repr(client)


def test_download_too_large_by_content_length(evalai_server: EvalAIServer,
                                              client: EvalAIClient, tmp_path: Path) -> None:
    url = evalai_server.put_media("big.csv", b"x" * 5000)
    with pytest.raises(SubmissionError) as caught:
        client.download(url, tmp_path / "big.csv", max_bytes=4000, timeout=5)
    assert "4 kB limit" in str(caught.value) and str(tmp_path) not in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_download_too_large_while_streaming(evalai_server: EvalAIServer, client: EvalAIClient,
                                            tmp_path: Path) -> None:
    url = evalai_server.put_media("big.csv", b"x" * 300_000)
    # a storage answer without Content-Length: the cap holds while streaming
    response_headers_removed(client)
    with pytest.raises(SubmissionError, match="100 kB limit"):
        client.download(url, tmp_path / "big.csv", max_bytes=100_000, timeout=5)
    assert not list(tmp_path.iterdir())  # the partial file is gone


def response_headers_removed(client: EvalAIClient) -> None:
    """Drop Content-Length from every answer, as a chunked storage answer would."""
    def hook(response, *args, **kwargs):  # type: ignore[no-untyped-def]
        response.headers.pop("Content-Length", None)
        return response

    client.session.hooks["response"].append(hook)


def test_truncated_download_is_retryable_then_recovers(evalai_server: EvalAIServer,
                                                       client: EvalAIClient,
                                                       tmp_path: Path) -> None:
    url = evalai_server.put_media("a.csv", b"z" * 200_000)
    evalai_server.truncate(times=10)
    with pytest.raises(ServiceError, match="cut off") as caught:
        client.download(url, tmp_path / "a.csv", max_bytes=10**6, timeout=5)
    assert caught.value.retryable and not list(tmp_path.iterdir())
    evalai_server.clear_faults()
    evalai_server.truncate(times=1)
    assert client.download(url, tmp_path / "a.csv", max_bytes=10**6, timeout=5) == 200_000


def test_download_timeout(evalai_server: EvalAIServer, evalai_world: World,
                          tmp_path: Path) -> None:
    client = client_for(evalai_server, evalai_world, timeout=0.2,
                        policy=RetryPolicy(attempts=1))
    url = evalai_server.put_media("a.csv", b"z")
    evalai_server.slow("media", 1.0)
    with pytest.raises(ServiceError, match="timed out") as caught:
        client.download(url, tmp_path / "a.csv", max_bytes=10, timeout=0.5)
    assert caught.value.retryable


def test_redirects_are_checked_hop_by_hop(evalai_server: EvalAIServer, client: EvalAIClient,
                                          tmp_path: Path) -> None:
    url = evalai_server.put_media("a.csv", b"same host")
    evalai_server.redirect("media", "/media/a.csv")
    assert client.download(url, tmp_path / "a", max_bytes=100, timeout=5) == 9
    # 127.0.0.1 and localhost are the same server but not the same host
    evalai_server.redirect("media", url.replace("127.0.0.1", "localhost"))
    with pytest.raises(ServiceError, match="not a configured storage host") as caught:
        client.download(url, tmp_path / "b", max_bytes=100, timeout=5)
    assert not caught.value.retryable
    with pytest.raises(ServiceError, match="scheme 'file'"):
        client.download("file:///etc/passwd", tmp_path / "c", max_bytes=100, timeout=5)


def test_no_token_is_sent_to_storage(evalai_server: EvalAIServer, client: EvalAIClient,
                                     tmp_path: Path) -> None:
    seen: list[str | None] = []

    def hook(response, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(response.request.headers.get("Authorization"))
        return response

    client.session.hooks["response"].append(hook)
    client.download(evalai_server.put_media("a", b"1"), tmp_path / "a", 10, 5)
    assert seen == [None]
