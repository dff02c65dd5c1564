"""The outbox: what a final status or an operator's change must tell the outside world.

    actions     what a row asks for (the Action enum, stored as strings)
    followups   the rows (and standings snapshot) written in the change's transaction
    drain       sends due rows, marks them done or backs off
    reporting   the EvalAI numbers and the participant's text of a result

Storage (enqueue, leases, backoff) is the database's: evaluator.db.publications.
"""
