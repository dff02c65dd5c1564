"""What an outbox row asks for: its action, stored in `publication.action` as the value's
string (the database keeps the outbox generic; the daemon gives the strings meaning).

    target  action    what the drain does (outbox/drain.py)
    EvalAI  report    PUT the final status: finished with the result, failed with the
                      message, a hidden finished one cancelled (off EvalAI's board)
            ack       delete the queue message, only once the report is done
            ranks     re-PUT every counted result of the phase whose numbers moved
            rank      one such re-PUT, recorded as sent (never pending: what the target
                      shows, so the next change is compared with it)
            baseline  PATCH the submission's is_baseline flag
    GitHub  board     one commit with every phase's boards
    files   board     the phase's boards in the publish folder
"""

from __future__ import annotations

import enum


class Action(enum.StrEnum):
    REPORT = "report"
    ACK = "ack"
    RANKS = "ranks"
    RANK = "rank"
    BASELINE = "baseline"
    BOARD = "board"


def action_of(stored: str) -> Action | None:
    """The action a stored row names, or None for one this code does not know (a row
    written by another version)."""
    try:
        return Action(stored)
    except ValueError:
        return None
