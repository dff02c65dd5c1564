"""The scoring database: engine and migrations, models with the submission state machine,
and one module per noun for the writes and queries (challenges, submissions,
evaluations, publications)."""
