"""Fixtures of the cluster tier."""

from tests.cluster.watcher_process import start_watcher  # noqa: F401
