"""Smoke tests for the real-server fixtures in conftest.py / servers.py."""

from __future__ import annotations

import os
import signal

import pytest

try:
    from . import servers
except ImportError:
    import servers

# --- standalone ------------------------------------------------------------------------------------------


@pytest.mark.redis
def test_standalone_write_and_read(redis_server: servers.RedisServer) -> None:
    client = redis_server.client()
    assert client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


@pytest.mark.redis
@pytest.mark.parametrize("protocol", [2, 3])
def test_standalone_speaks_both_protocols(redis_server_session: servers.RedisServer, protocol: int) -> None:
    client = redis_server_session.client(protocol=protocol, decode_responses=True)
    client.flushdb()
    client.hset("h", mapping={"a": "1", "b": "2"})
    assert client.hgetall("h") == {"a": "1", "b": "2"}


@pytest.mark.redis
def test_pause_and_resume(redis_server: servers.RedisServer) -> None:
    redis_server.pause()
    assert not redis_server.ping(timeout=0.2)
    redis_server.resume()
    redis_server.wait_ready()
    assert redis_server.ping()


@pytest.mark.redis
def test_kill_then_restart_with_aof_keeps_acknowledged_write() -> None:
    with servers.running(servers.RedisServer, appendonly=True, appendfsync="always") as server:
        client = server.client()
        assert client.set("durable", "yes")
        port, pid = server.port, server.process.pid
        server.kill()
        assert not server.alive()
        assert server.process.popen.returncode == -signal.SIGKILL
        server.restart()
        assert server.port == port
        assert server.process.pid != pid
        assert server.client().get("durable") == b"yes"


@pytest.mark.redis
def test_restart_without_aof_loses_data(redis_server: servers.RedisServer) -> None:
    client = redis_server.client()
    client.set("volatile", "1")
    redis_server.kill()
    redis_server.restart()
    assert redis_server.client().get("volatile") is None


@pytest.mark.redis
def test_stop_is_graceful(redis_server: servers.RedisServer) -> None:
    redis_server.stop()
    assert not redis_server.alive()
    assert redis_server.process.popen.returncode == 0


# --- cluster ----------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_cluster_reads_and_writes_across_slots(redis_cluster: servers.RedisCluster) -> None:
    from redis.crc import key_slot

    assert len(redis_cluster.masters) == 3
    assert len(redis_cluster.replicas) == 3
    assert redis_cluster.url == f"redis+cluster://127.0.0.1:{redis_cluster.nodes[0].port}"
    client = redis_cluster.client()
    keys = [f"key:{i}" for i in range(500)]
    slots = {key_slot(k.encode()) for k in keys}
    assert len(slots) > 400
    for key in keys:
        client.set(key, key.upper())
    assert all(client.get(key) == key.upper().encode() for key in keys)
    owners = {redis_cluster.node_for_key(key).port for key in keys}
    assert owners == {node.port for node in redis_cluster.masters}
    assert all(servers.key_slot(k) == key_slot(k.encode()) for k in [*keys, "{user1}.a", "x{}y"])
    client.delete(*keys[:1])


@pytest.mark.cluster
def test_cluster_client_from_url(redis_cluster: servers.RedisCluster) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(redis_cluster.url.replace("redis+cluster://", "redis://"))
    try:
        client.set("{tag}a", 1)
        client.set("{tag}b", 2)
        assert client.mget("{tag}a", "{tag}b") == [b"1", b"2"]
    finally:
        client.close()


@pytest.mark.cluster
@pytest.mark.slow
def test_cluster_replica_takes_over_a_killed_master() -> None:
    with servers.running(servers.RedisCluster, replicas=1, node_timeout_ms=2000) as cluster:
        owner = cluster.node_for_key("survivor")
        direct = owner.client()
        direct.set("survivor", "1")
        # WAIT on the connection that wrote: the replica has the write before the master dies.
        assert direct.wait(1, 5000) == 1
        owner.kill()
        cluster.wait_healthy(timeout=30)
        new_owner = cluster.node_for_key("survivor")
        assert new_owner is not owner
        assert new_owner.client().get("survivor") == b"1"
        assert len(cluster.masters) == 3
        assert cluster.client().get("survivor") == b"1"


# --- sentinel ---------------------------------------------------------------------------------------------


@pytest.mark.sentinel
def test_sentinel_reports_master_and_replica_reads(redis_sentinel: servers.RedisSentinelGroup) -> None:
    from redis.sentinel import Sentinel

    host, port = redis_sentinel.sentinel_addr
    assert redis_sentinel.url == f"redis+sentinel://{host}:{port}/mymaster"
    assert redis_sentinel.master_addr() == redis_sentinel.current_master().addr

    sentinel = Sentinel([redis_sentinel.sentinel_addr], socket_timeout=5)
    try:
        assert sentinel.discover_master(redis_sentinel.master_name) == redis_sentinel.current_master().addr
        master = sentinel.master_for(redis_sentinel.master_name, socket_timeout=5)
        master.set("via-sentinel", "ok")
        # WAIT: the write reached the replica before we read it there (no sleeping).
        assert master.wait(1, 5000) == 1
        replica = sentinel.slave_for(redis_sentinel.master_name, socket_timeout=5)
        assert replica.get("via-sentinel") == b"ok"
        assert replica.execute_command("ROLE")[0] == b"slave"
        master.close()
        replica.close()
    finally:
        for client in sentinel.sentinels:
            client.close()


@pytest.mark.sentinel
@pytest.mark.slow
def test_sentinel_fails_over_when_master_is_killed() -> None:
    with servers.running(servers.RedisSentinelGroup) as group:
        client = group.master_client()
        client.set("before", "1")
        assert client.wait(1, 5000) == 1
        old = group.master_addr()
        killed = group.kill_master()
        new = group.wait_for_failover(old)
        assert new != old
        assert group.current_master().client().get("before") == b"1"
        group.rejoin(killed)
        assert killed.info("replication")["role"] == "slave"
        assert killed.client().get("before") == b"1"


# --- postgres ---------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_with_psycopg(postgres_db: servers.PostgresDatabase) -> None:
    assert postgres_db.name is not None
    assert postgres_db.name.startswith("buttress_test_")
    with postgres_db.connect() as conn:
        conn.execute("CREATE TABLE events (id serial PRIMARY KEY, title text NOT NULL)")
        conn.execute("INSERT INTO events (title) VALUES (%s), (%s)", ("Kickoff", "Retro"))
        rows = conn.execute("SELECT title FROM events ORDER BY id").fetchall()
        assert rows == [("Kickoff",), ("Retro",)]
        assert conn.execute("SELECT current_database()").fetchone() == (postgres_db.name,)

    import psycopg

    with psycopg.connect(postgres_db.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (2,)


@pytest.mark.postgres
def test_postgres_with_sqlalchemy(postgres_db: servers.PostgresDatabase) -> None:
    import sqlalchemy as sa

    engine = postgres_db.engine()
    metadata = sa.MetaData()
    speakers = sa.Table(
        "speakers", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text)
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(speakers.insert(), [{"name": "Ada"}, {"name": "Grace"}])
    with engine.connect() as conn:
        names = conn.execute(sa.select(speakers.c.name).order_by(speakers.c.id)).scalars().all()
    assert names == ["Ada", "Grace"]


@pytest.mark.postgres
def test_postgres_databases_are_fresh_and_dropped(postgres_server: servers.PostgresServer) -> None:
    with servers.running(servers.PostgresDatabase, postgres_server) as first:
        name = first.name
        with first.connect() as conn:
            conn.execute("CREATE TABLE t (x int)")
        with servers.running(servers.PostgresDatabase, postgres_server) as second, second.connect() as conn:
            assert second.name != name
            assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
    with postgres_server.connect_admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_private_cluster() -> None:
    with servers.running(servers.PostgresDatabase, prefer_existing=False) as database:
        assert database.private
        assert database.server.port != 5432
        data_dir = database.server.dir
        with database.connect() as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
            assert conn.execute("SELECT x FROM t").fetchone() == (42,)
            if os.geteuid() == 0:
                assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    assert not data_dir.exists()


# --- skip / fail policy -----------------------------------------------------------------------------------


def test_missing_binary_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(servers.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server"), servers.running(servers.RedisServer):
        pass
    monkeypatch.setenv(servers.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="redis-server"), servers.running(servers.RedisServer):
        pass
