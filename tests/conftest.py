"""Shared fixtures: a throwaway PostgreSQL server (tests/postgres.py), the in-repo EvalAI
server (tests/servers/plugin.py)."""

pytest_plugins = ["tests.postgres", "tests.servers.plugin"]
