"""Probes: models trained on every fold of a task at once."""
