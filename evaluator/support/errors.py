"""Every error class of probeboard: whose fault it is, and whether a retry can help.

Each message says what is wrong, where, and how to fix it. The daemon decides from
`fault` whom to tell (the participant through EvalAI, or the operator through the log and
`probeboard status`) and from `retryable` whether to try again later; the CLI prints
str(error) and exits 2, never a traceback.

Only `SubmissionError` messages reach participants verbatim: they must never name a task,
count tasks, show labels, a server path or a token. Every other kind is shown to a
participant as `participant_message(error)`, a fixed sentence that names nothing.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class Fault(enum.StrEnum):
    """Who has to act for the problem to go away."""

    PARTICIPANT = "participant"  # their file: fix it and submit again
    ORGANISER = "organiser"  # labels, configuration, tokens, operator commands
    SERVICE = "service"  # EvalAI, GitHub, the network: usually passes by itself
    RESOURCES = "resources"  # the evaluation ran out of time or memory on our machine


class ProbeboardError(Exception):
    """A problem with a clear cause; str(error) is the whole message."""

    fault: ClassVar[Fault] = Fault.ORGANISER
    retryable: bool = False


# ---- the participant's file ------------------------------------------------------------


class SubmissionError(ProbeboardError):
    """The participant's file is unusable; never retried (the same bytes fail the same way).

    The message is shown to the participant (EvalAI stderr), so it must never name a
    task, count tasks or show labels. `code` is a short stable reason for logs and tests.
    """

    fault = Fault.PARTICIPANT

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---- the organiser's side --------------------------------------------------------------


class LabelError(ProbeboardError):
    """The organiser's label folder is unusable (never shown to participants)."""


class ConfigError(ProbeboardError):
    """A configuration (scoring config, daemon settings, command line) is invalid; the
    message names the key or option."""


class PhaseSettingsMismatch(ConfigError):
    """A run's scoring settings differ from those its phase was created with: joining
    would rank fold scores that are not comparable."""

    def __init__(self, phase: str, differences: dict[str, tuple[object, object]], *,
                 fix: str = "score this run with the phase's settings, or record it under "
                            "another phase (--phase)") -> None:
        keys = ", ".join(
            f"{key} (phase: {phase_value!r}, this run: {run_value!r})"
            for key, (phase_value, run_value) in sorted(differences.items())
        )
        super().__init__(f"phase {phase!r} was scored with other settings: {keys}; {fix}")
        self.phase = phase
        self.differences = differences


class NotFound(ProbeboardError):
    """Something the operator named (a submission, phase, database) does not exist."""


class OperatorRefused(ProbeboardError):
    """An operator command that cannot be done as asked (already done, nothing to do, work
    in progress); the message says why and what to do instead. Nothing was changed."""


class IllegalTransition(ProbeboardError):
    """A submission status change that the state machine (db/models.py) does not allow."""

    def __init__(self, submission_id: int | None, old: str, new: str,
                 allowed: list[str], *, reason: str | None = None) -> None:
        """`allowed` lists where `old` may go; an operator's refused move gives its
        `reason` (why not, and what to do) instead."""
        super().__init__(
            f"submission {submission_id}: cannot go from {old} to {new}: {reason}" if reason
            else f"submission {submission_id}: cannot go from {old} to {new}; "
            f"from {old} it may go to {', '.join(allowed) or 'nothing (final)'}"
        )
        self.old = old
        self.new = new


# ---- outside services ------------------------------------------------------------------


class ServiceError(ProbeboardError):
    """An outside service (EvalAI, GitHub, a storage host) failed or refused.

    `retryable` is per instance: a 5xx, a timeout, a reset or a 429 passes by itself
    (`retry_after` seconds when the service said so); a 4xx that names our request does not.
    """

    fault = Fault.SERVICE

    def __init__(self, service: str, message: str, *, retryable: bool,
                 status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class ServiceAuthError(ServiceError):
    """The service refused our credentials (expired or revoked token, not the challenge's
    host): the operator must act. Retried slowly, so a renewed token is picked up without
    a restart and the daemon never crash-loops."""

    fault = Fault.ORGANISER

    def __init__(self, service: str, message: str, *, status: int | None = None) -> None:
        super().__init__(service, message, retryable=True, status=status)


# ---- our machine's limits --------------------------------------------------------------


class ResourceLimitError(ProbeboardError):
    """An evaluation ran out of time or memory. Not retried automatically: the same file
    needs the same resources; the operator may raise the limit and requeue it."""

    fault = Fault.RESOURCES


class EvaluationTimeout(ResourceLimitError):
    pass


class EvaluationOutOfMemory(ResourceLimitError):
    pass


_PARTICIPANT_MESSAGES = {
    Fault.ORGANISER: "The evaluation could not run because of a problem on the organisers' "
                     "side. They have been told; your submission will be scored once it is "
                     "fixed, you do not need to submit again.",
    Fault.SERVICE: "The evaluation was interrupted by a temporary service problem and will "
                   "be retried; you do not need to submit again.",
    Fault.RESOURCES: "The evaluation of this file ran out of the time or memory the challenge "
                     "allows. Check that it has one row per sample and the expected number of "
                     "columns, then submit again.",
}


def participant_message(error: BaseException) -> str:
    """What a participant may read about `error`: their own file's problem in full, any
    other problem as a fixed sentence that names no task, path or token."""
    if isinstance(error, SubmissionError):
        return str(error)
    fault = error.fault if isinstance(error, ProbeboardError) else Fault.ORGANISER
    return _PARTICIPANT_MESSAGES[fault]
