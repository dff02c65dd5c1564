"""Shared fixtures: a throwaway PostgreSQL server (tests/postgres.py)."""

pytest_plugins = ["tests.postgres"]
