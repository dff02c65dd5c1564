"""Typed errors: each message says what is wrong, where, and how to fix it."""


class ProbeboardError(Exception):
    """A problem the user can fix; str(error) is the whole message."""


class SubmissionError(ProbeboardError):
    """The participant's file is unusable.

    The message is shown to the participant (EvalAI stderr), so it must never name a
    task, count tasks or show labels. `code` is a short stable reason for logs and tests.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LabelError(ProbeboardError):
    """The organiser's label folder is unusable (never shown to participants)."""


class ConfigError(ProbeboardError):
    """The evaluation config is invalid; the message names the key."""
