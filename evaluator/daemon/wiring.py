"""Settings -> the outside-service clients, made in one place for the daemon and the
operator commands, so each token reaches exactly the client that sends it."""

from __future__ import annotations

from dataclasses import dataclass

from evaluator.clients.evalai import EvalAIClient
from evaluator.clients.github import GitHubPublisher
from evaluator.daemon.settings import Settings


@dataclass
class Clients:
    """The clients the settings ask for; None where a service is not configured."""

    evalai: EvalAIClient | None
    github: GitHubPublisher | None

    def close(self) -> None:
        for client in (self.evalai, self.github):
            if client is not None:
                client.close()


def evalai_client(settings: Settings) -> EvalAIClient | None:
    evalai = settings.evalai
    if evalai is None:
        return None
    return EvalAIClient(evalai.url, evalai.token, challenge_pk=evalai.challenge_pk,
                        queue=evalai.queue, token_source=evalai.token_source,
                        storage_hosts=evalai.storage_hosts)


def github_publisher(settings: Settings) -> GitHubPublisher | None:
    github = settings.github
    if github is None:
        return None
    return GitHubPublisher(github.token, base_url=github.base_url,
                           token_setting=github.token_source,
                           seconds_between_writes=github.seconds_between_writes)


def clients(settings: Settings) -> Clients:
    return Clients(evalai_client(settings), github_publisher(settings))
