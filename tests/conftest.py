"""Shared fixtures: a throwaway PostgreSQL server (tests/postgres.py), scoring databases on
both backends (tests/databases.py), the in-repo EvalAI server (tests/servers/plugin.py), the
real EvalAI server and CLI (tests/servers/real_evalai.py)."""

pytest_plugins = ["tests.postgres", "tests.databases", "tests.servers.plugin",
                  "tests.servers.real_evalai"]
