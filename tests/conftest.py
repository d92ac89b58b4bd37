"""Shared fixtures. Real servers come from tests/servers.py; keep the logic there and this file short."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:  # tests/ may become a package later; today pytest puts tests/ itself on sys.path
    from . import servers
except ImportError:
    import servers

# --- Redis -------------------------------------------------------------------------------------------


@pytest.fixture
def redis_server() -> Iterator[servers.RedisServer]:
    """A fresh standalone redis-server (no persistence) for one test; safe to kill/pause.

    For durability tests start one with AOF: `with servers.running(servers.RedisServer, appendonly=True)`.
    """
    with servers.running(servers.RedisServer) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[servers.RedisServer]:
    """One standalone redis-server shared by the session: FLUSHDB first, never kill or pause it."""
    with servers.running(servers.RedisServer, name="redis-session") as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[servers.RedisCluster]:
    """Three masters with one replica each, shared by the session; build your own to kill nodes."""
    with servers.running(servers.RedisCluster, replicas=1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[servers.RedisSentinelGroup]:
    """Master + replica + one Sentinel ("mymaster"), shared by the tests of one module."""
    with servers.running(servers.RedisSentinelGroup) as group:
        yield group


# --- PostgreSQL ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[servers.PostgresServer]:
    """The PostgreSQL to create databases in: the local one if it answers, else a private cluster."""
    with servers.running(servers.PostgresServer) as server:
        yield server


@pytest.fixture
def postgres_db(postgres_server: servers.PostgresServer) -> Iterator[servers.PostgresDatabase]:
    """A fresh throwaway database `buttress_test_<random>`, dropped after the test."""
    with servers.running(servers.PostgresDatabase, postgres_server) as database:
        yield database
