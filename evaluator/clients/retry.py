"""Bounded retries with full-jitter exponential backoff, for the outside-service clients.

Full jitter (sleep a uniform draw in [0, min(cap, base * 2**n)]) spreads the retries of
many workers after a shared outage; a server's Retry-After wins, capped so a bad header
cannot stall the daemon. Both the number of attempts and the total time are bounded.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from evaluator.support.errors import ServiceAuthError, ServiceError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    base: float = 0.5  # seconds; the n-th backoff is drawn from [0, base * 2**n]
    cap: float = 30.0  # longest single backoff
    retry_after_cap: float = 120.0  # longest wait a Retry-After header may ask for
    total: float = 300.0  # no new try starts after this many seconds

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return random.uniform(0.0, min(self.cap, self.base * 2 ** attempt))


def call_with_retries(action: Callable[[], T], policy: RetryPolicy, what: str,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `action` until it returns or raises a non-retryable error; `what` names the call
    in log lines (it must hold no secret)."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return action()
        except ServiceError as exc:
            attempt += 1
            # a refused token needs the operator; the daemon retries that slowly, not here
            if (not exc.retryable or isinstance(exc, ServiceAuthError)
                    or attempt >= policy.attempts):
                raise
            delay = policy.backoff(attempt - 1, exc.retry_after)
            if time.monotonic() - started + delay > policy.total:
                raise
            log.warning("%s failed (%s); try %d of %d in %.2f s", what, exc, attempt + 1,
                        policy.attempts, delay)
            sleep(delay)
