"""Shared fixtures: a throwaway PostgreSQL server, scoring databases on both backends."""

pytest_plugins = ["tests.postgres", "tests.databases"]
