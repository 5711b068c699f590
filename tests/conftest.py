"""Shared pytest fixtures for every test tier."""

from tests.kube_server.fixtures import *  # noqa: F401,F403
