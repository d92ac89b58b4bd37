"""Real servers for the test suite: Redis (standalone, cluster, sentinel) and PostgreSQL.

Every helper starts real processes on free ports in its own temporary directory and removes both when it
is closed, whether the test passed or not. Readiness is always polled against the server with a deadline,
never waited for with a fixed sleep.

Use a helper through ``running()`` (or as a context manager) so a missing binary becomes a skip, or a
failure under ``BUTTRESS_REQUIRE_SERVICES=1``::

    with running(RedisCluster, replicas=1) as cluster:
        cluster.masters[0].kill()

Servers are started with ``PR_SET_PDEATHSIG`` so they die with the test process even if it is killed
hard. Nothing here touches a server it did not start, except the PostgreSQL it creates throwaway
databases in (``PostgresServer`` with ``prefer_existing=True``).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

HOST = "127.0.0.1"
REQUIRE_ENV = "BUTTRESS_REQUIRE_SERVICES"
POSTGRES_URL_ENV = "BUTTRESS_TEST_POSTGRES_URL"
START_TIMEOUT = 15.0

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# common plumbing
# --------------------------------------------------------------------------------------------------


class MissingService(RuntimeError):
    """A binary or server a helper needs is not available on this machine."""


class ServerError(RuntimeError):
    """A server was available but did not start or did not reach the expected state in time."""


def services_required() -> bool:
    """True when missing services must fail the run (CI) rather than skip."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the current test for ``reason``, or fail it when ``BUTTRESS_REQUIRE_SERVICES=1``."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def running(factory: Callable[..., T], *args: Any, **kwargs: Any) -> Iterator[T]:
    """Build and start a helper, yield it, always close it; a missing binary skips (or fails in CI)."""
    try:
        helper = factory(*args, **kwargs)
        helper.start()  # type: ignore[attr-defined]
    except MissingService as exc:
        unavailable(str(exc))
    try:
        yield helper
    finally:
        helper.close()  # type: ignore[attr-defined]


def wait_until(
    predicate: Callable[[], T], *, timeout: float = START_TIMEOUT, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return it; raise ServerError at the deadline.

    Exceptions raised by the predicate count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f": last error {last_error!r}" if last_error is not None else ""
            raise ServerError(f"timed out after {timeout:.1f}s waiting for {what or predicate!r}{detail}")
        time.sleep(interval)


def find_binary(name: str, *extra_globs: str) -> str | None:
    """Locate an executable on PATH or in the given glob patterns (newest version directory first)."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_globs:
        candidates = sorted(glob.glob(pattern), key=_version_key, reverse=True)
        for candidate in candidates:
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def _version_key(path: str) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", path)]


def require_binary(name: str, *extra_globs: str, why: str = "") -> str:
    """Like find_binary, but raise MissingService naming the binary when it is absent."""
    found = find_binary(name, *extra_globs)
    if found is None:
        hint = f" ({why})" if why else ""
        raise MissingService(f"`{name}` not found on PATH{hint}")
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, with_offset: int | None = None) -> int:
    """Return a TCP port on 127.0.0.1 that is free now (and ``port + with_offset`` too, if given)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if with_offset is None:
            return port
        if port + with_offset <= 65535 and _port_is_free(port + with_offset):
            return port
    raise ServerError("could not find a free port")


OWNER_FILE = ".buttress-owner-pid"
_swept = False


def make_dir(name: str) -> Path:
    """A new temporary directory ``buttress-<name>-*`` tagged with this process id.

    The first call also removes directories left by test processes that died without cleaning up
    (killed hard, e.g. by a CI timeout); only directories carrying the tag are considered.
    """
    global _swept
    if not _swept:
        _swept = True
        sweep_stale_dirs()
    path = Path(tempfile.mkdtemp(prefix=f"buttress-{name}-"))
    (path / OWNER_FILE).write_text(str(os.getpid()))
    return path


def sweep_stale_dirs() -> None:
    """Remove tagged temporary directories whose owning process no longer exists."""
    for tag in Path(tempfile.gettempdir()).glob(f"buttress-*/{OWNER_FILE}"):
        try:
            pid = int(tag.read_text().strip())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tag.parent, ignore_errors=True)
        except (OSError, ValueError):
            continue


_libc: Any = None


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the test process dies, so no server outlives it."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _preexec() -> Callable[[], None] | None:
    return _die_with_parent if os.uname().sysname == "Linux" else None


class Process:
    """One child process with its log file; signals and waits for it."""

    def __init__(self, argv: list[str], *, log: Path, cwd: Path, user: str | None = None) -> None:
        self.argv = argv
        self.log = log
        self.cwd = cwd
        self.user = user
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_preexec(),
                user=self.user,
                env=_child_env(self.user),
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, signum: int) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def terminate(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Send ``signum`` (after SIGCONT, in case it is paused) and wait; SIGKILL after ``timeout``."""
        if self.alive():
            self.send(signal.SIGCONT)
            self.send(signum)
        self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL and reap (works on a SIGSTOPped process too)."""
        self.send(signal.SIGKILL)
        self.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _child_env(user: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    if user is not None:
        entry = pwd.getpwnam(user)
        env.update(HOME=entry.pw_dir, USER=user, LOGNAME=user)
    return env


# --------------------------------------------------------------------------------------------------
# a minimal RESP2 client, so readiness checks do not depend on redis-py
# --------------------------------------------------------------------------------------------------


class RespError(Exception):
    """An error reply from a Redis server."""


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_reply(reader: Any) -> Any:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read_reply(reader) for _ in range(size)]
    raise ConnectionError(f"unexpected reply {line!r}")


def resp(port: int, *args: Any, timeout: float = 2.0) -> Any:
    """Send one command to the Redis (or Sentinel) on ``port`` and return its decoded reply."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock, sock.makefile("rb") as reader:
        sock.sendall(_encode(args))
        return _read_reply(reader)


def parse_info(text: str) -> dict[str, str]:
    """Parse the ``key:value`` lines of INFO / CLUSTER INFO."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            info[key] = value.strip()
    return info


def _redis_version() -> tuple[int, ...]:
    global _REDIS_VERSION
    if _REDIS_VERSION is None:
        binary = require_binary("redis-server", why="apt-get install redis-server")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
        _REDIS_VERSION = tuple(int(x) for x in match.groups()) if match else (0, 0, 0)
    return _REDIS_VERSION


_REDIS_VERSION: tuple[int, ...] | None = None


# --------------------------------------------------------------------------------------------------
# Redis standalone
# --------------------------------------------------------------------------------------------------


class RedisServer:
    """One ``redis-server`` process on a free port in its own temporary directory.

    Args:
        appendonly: turn the AOF on, so ``kill()`` + ``restart()`` keeps acknowledged writes.
        appendfsync: AOF fsync policy; ``"always"`` makes every acknowledged write durable.
        config: extra redis.conf directives, e.g. ``{"maxmemory": "10mb"}``.
        sentinel: run as a Sentinel (``redis-server --sentinel``); ``config`` then holds its directives.
        name: a label used for the temporary directory.
        workdir: where to put the server's directory (a new temp dir if None).
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "always",
        config: dict[str, Any] | list[tuple[str, Any]] | None = None,
        sentinel: bool = False,
        name: str = "redis",
        workdir: Path | None = None,
        port: int | None = None,
        _cluster_bus: bool = False,
    ) -> None:
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        items = config.items() if isinstance(config, dict) else (config or [])
        self.extra_config: list[tuple[str, Any]] = list(items)
        self.is_sentinel = sentinel
        self.name = name
        self._workdir = workdir
        self._fixed_port = port
        self._cluster_bus = _cluster_bus
        self.dir: Path | None = None
        self._owns_dir = workdir is None
        self._port: int | None = None
        self.process: Process | None = None
        self._clients: list[Any] = []

    # -- addresses --------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError(f"{self.name} is not started")
        return self._port

    @property
    def addr(self) -> tuple[str, int]:
        return (HOST, self.port)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> RedisServer:
        """Start on a free port (retrying on a port race) and wait until it answers PING."""
        binary = require_binary("redis-server", why="apt-get install redis-server")
        if self.dir is None:
            if self._workdir is None:
                self.dir = make_dir(self.name)
            else:
                self.dir = self._workdir
                self.dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port is not None else 4
        for attempt in range(attempts):
            if self._fixed_port is not None:
                self._port = self._fixed_port
            else:
                self._port = free_port(with_offset=10000 if self._cluster_bus else None)
            try:
                self._launch(binary)
                return self
            except ServerError:
                if attempt + 1 == attempts or "in use" not in self._log_tail():
                    self.close()
                    raise
        raise AssertionError("unreachable")

    def _config_text(self) -> str:
        assert self.dir is not None
        lines = [
            f"port {self.port}",
            f"bind {HOST}",
            "daemonize no",
            f'dir "{self.dir}"',
            f'logfile "{self.dir / "server.log"}"',
        ]
        if not self.is_sentinel:
            lines += ['save ""', f"appendonly {'yes' if self.appendonly else 'no'}"]
            if self.appendonly:
                lines.append(f"appendfsync {self.appendfsync}")
            # Full syncs start at once instead of waiting 5 s for more replicas to join the transfer.
            lines.append("repl-diskless-sync-delay 0")
            if _redis_version() >= (7, 0, 0):
                lines.append("enable-debug-command yes")
        for key, value in self.extra_config:
            lines.append(f"{key} {value}")
        return "\n".join(lines) + "\n"

    def _launch(self, binary: str) -> None:
        assert self.dir is not None
        conf = self.dir / ("sentinel.conf" if self.is_sentinel else "redis.conf")
        conf.write_text(self._config_text())
        argv = [binary, str(conf)] + (["--sentinel"] if self.is_sentinel else [])
        self.process = Process(argv, log=self.dir / "stdout.log", cwd=self.dir)
        self.process.start()
        self.wait_ready()

    def _log_tail(self) -> str:
        if self.dir is None:
            return ""
        parts = []
        for log in ("server.log", "stdout.log"):
            try:
                parts.append((self.dir / log).read_text(errors="replace")[-3000:])
            except OSError:
                pass
        return "\n".join(parts)

    def ping(self, timeout: float = 1.0) -> bool:
        """True when the server answers PING within ``timeout`` seconds."""
        try:
            return resp(self.port, "PING", timeout=timeout) == "PONG"
        except (OSError, RespError):
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll PING until the server answers (LOADING counts as not ready)."""
        process = self.process

        def ready() -> bool:
            if process is not None and not process.alive():
                raise ServerError(f"{self.name} exited early:\n{self._log_tail()}")
            return self.ping()

        try:
            wait_until(ready, timeout=timeout, what=f"{self.name} on port {self._port} to answer PING")
        except ServerError as exc:
            if process is not None:
                process.kill()
            raise ServerError(f"{exc}\n{self._log_tail()}") from None

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no final fsync) and reap it."""
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), waiting for the process to exit."""
        if self.process is not None:
            self.process.terminate(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: the process keeps its port but answers nothing until ``resume()``."""
        if self.process is not None:
            self.process.send(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause()``."""
        if self.process is not None:
            self.process.send(signal.SIGCONT)

    def restart(self) -> None:
        """Start again on the same port with the same directory (AOF and nodes.conf survive).

        Stops the server gracefully first if it is still running; call ``kill()`` before for a crash.
        """
        if self.process is not None and self.process.alive():
            self.stop()
        binary = require_binary("redis-server")
        self._launch(binary)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def close(self) -> None:
        """Close the clients handed out, kill the process, remove the directory."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        if self.process is not None:
            self.process.kill()
        if self.dir is not None and self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inspection -------------------------------------------------------------------------------

    def command(self, *args: Any, timeout: float = 2.0) -> Any:
        """Run one command over a raw connection (no redis-py) and return the decoded reply."""
        return resp(self.port, *args, timeout=timeout)

    def info(self, section: str = "") -> dict[str, str]:
        return parse_info(self.command("INFO", section) if section else self.command("INFO"))

    def client(self, **kwargs: Any) -> Any:
        """A redis-py client for this server (closed with the helper). ``protocol=3`` for RESP3."""
        import redis

        kwargs.setdefault("socket_timeout", 5.0)
        client = redis.Redis(host=HOST, port=self.port, **kwargs)
        self._clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> Any:
        """A ``redis.asyncio`` client; the caller must ``await client.aclose()`` in its event loop."""
        import redis.asyncio

        kwargs.setdefault("socket_timeout", 5.0)
        return redis.asyncio.Redis(host=HOST, port=self.port, **kwargs)

    def __repr__(self) -> str:
        return f"<RedisServer {self.name} port={self._port} alive={self.alive()}>"


# --------------------------------------------------------------------------------------------------
# Redis Cluster
# --------------------------------------------------------------------------------------------------


class RedisCluster:
    """Three masters (and optionally one replica each) joined with ``redis-cli --cluster create``.

    Args:
        masters: number of master nodes (3 is the minimum redis-cli accepts).
        replicas: replicas per master (0 or 1 are sensible here).
        node_timeout_ms: ``cluster-node-timeout``; lower makes failover tests faster.
        appendonly: AOF on every node.
    """

    def __init__(
        self, *, masters: int = 3, replicas: int = 0, node_timeout_ms: int = 3000, appendonly: bool = False
    ) -> None:
        self.master_count = masters
        self.replicas_per_master = replicas
        self.node_timeout_ms = node_timeout_ms
        self.appendonly = appendonly
        self.dir: Path | None = None
        self.nodes: list[RedisServer] = []
        self._clients: list[Any] = []

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node, for seeding a cluster client."""
        return [node.addr for node in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:PORT`` seeded with the first node."""
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    @property
    def masters(self) -> list[RedisServer]:
        """The nodes that are masters now (follows failovers); dead nodes are left out."""
        result = []
        for node in self.nodes:
            with contextlib.suppress(OSError, RespError, ServerError):
                if node.alive() and node.info("replication").get("role") == "master":
                    result.append(node)
        return result

    @property
    def replicas(self) -> list[RedisServer]:
        result = []
        for node in self.nodes:
            with contextlib.suppress(OSError, RespError, ServerError):
                if node.alive() and node.info("replication").get("role") == "slave":
                    result.append(node)
        return result

    def start(self) -> RedisCluster:
        require_binary("redis-server", why="apt-get install redis-server")
        cli = require_binary("redis-cli", why="apt-get install redis-tools")
        self.dir = make_dir("redis-cluster")
        try:
            total = self.master_count * (1 + self.replicas_per_master)
            config = {
                "cluster-enabled": "yes",
                "cluster-config-file": "nodes.conf",
                "cluster-node-timeout": self.node_timeout_ms,
                "cluster-replica-validity-factor": 0,
                "cluster-allow-reads-when-down": "no",
            }
            for index in range(total):
                node = RedisServer(
                    appendonly=self.appendonly,
                    config=config,
                    name=f"cluster-node{index}",
                    workdir=self.dir / f"node{index}",
                    _cluster_bus=True,
                )
                self.nodes.append(node)
                node.start()
            argv = [cli, "--cluster", "create", *(f"{HOST}:{n.port}" for n in self.nodes)]
            argv += ["--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise ServerError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
            self.wait_healthy()
        except BaseException:
            self.close()
            raise
        return self

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every live node reports ``cluster_state:ok``, sees every slot served by a live
        master, and every live replica is in sync. After killing a master this waits for the failover.
        """

        def healthy() -> bool:
            live = {node.port for node in self.nodes if node.alive()}
            for node in self.nodes:
                if not node.alive():
                    continue
                if parse_info(node.command("CLUSTER", "INFO")).get("cluster_state") != "ok":
                    return False
                if any(int(master[1]) not in live for _, _, master, *_ in node.command("CLUSTER", "SLOTS")):
                    return False
                repl = node.info("replication")
                if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                    return False
            return True

        wait_until(healthy, timeout=timeout, what="cluster_state:ok on every node")

    def node_for_key(self, key: str | bytes) -> RedisServer:
        """The live master serving ``key``'s slot, as this cluster sees it now."""
        slot = key_slot(key)
        for node in self.nodes:
            if not node.alive():
                continue
            with contextlib.suppress(OSError, RespError):
                for start, end, master, *_ in node.command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(master[1])
                        return next(n for n in self.nodes if n.port == port)
        raise ServerError(f"no node serves slot {slot}")

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.cluster.RedisCluster`` client seeded with every node (closed with the helper)."""
        from redis.cluster import ClusterNode
        from redis.cluster import RedisCluster as ClusterClient

        kwargs.setdefault("socket_timeout", 5.0)
        nodes = [ClusterNode(host, port) for host, port in self.startup_nodes]
        client = ClusterClient(startup_nodes=nodes, **kwargs)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        for node in self.nodes:
            node.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def key_slot(key: str | bytes) -> int:
    """The cluster hash slot of ``key`` (CRC16/XMODEM of the hash tag, mod 16384)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc % 16384


# --------------------------------------------------------------------------------------------------
# Redis Sentinel
# --------------------------------------------------------------------------------------------------


class RedisSentinelGroup:
    """A master, one replica and one Sentinel monitoring them as ``master_name``.

    Args:
        master_name: the name the Sentinel monitors the master under.
        down_after_ms: ``sentinel down-after-milliseconds``; how long a silent master takes to be "down".
        failover_timeout_ms: ``sentinel failover-timeout``.
        appendonly: AOF on the master and the replica.
    """

    def __init__(
        self,
        *,
        master_name: str = "mymaster",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        appendonly: bool = False,
    ) -> None:
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.appendonly = appendonly
        self.dir: Path | None = None
        self.master: RedisServer | None = None
        self.replica: RedisServer | None = None
        self.sentinel: RedisServer | None = None
        self._clients: list[Any] = []

    @property
    def sentinel_addr(self) -> tuple[str, int]:
        assert self.sentinel is not None
        return self.sentinel.addr

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The Sentinel addresses, in the shape ``redis.sentinel.Sentinel`` takes."""
        return [self.sentinel_addr]

    @property
    def url(self) -> str:
        host, port = self.sentinel_addr
        return f"redis+sentinel://{host}:{port}/{self.master_name}"

    @property
    def servers(self) -> list[RedisServer]:
        """Master and replica as started (roles swap after a failover)."""
        return [s for s in (self.master, self.replica) if s is not None]

    def start(self) -> RedisSentinelGroup:
        require_binary("redis-server", why="apt-get install redis-server")
        self.dir = make_dir("redis-sentinel")
        try:
            self.master = RedisServer(appendonly=self.appendonly, name="master", workdir=self.dir / "master")
            self.master.start()
            self.replica = RedisServer(
                appendonly=self.appendonly,
                name="replica",
                workdir=self.dir / "replica",
                config={"replicaof": f"{HOST} {self.master.port}"},
            )
            self.replica.start()
            # The Sentinel discovers replicas from the master's INFO: let the replica attach first so the
            # Sentinel's first INFO already lists it (the next one comes 10 s later).
            self._wait_replica_synced(self.master, self.replica)
            self.sentinel = RedisServer(
                sentinel=True,
                name="sentinel",
                workdir=self.dir / "sentinel",
                config=[
                    ("sentinel monitor", f"{self.master_name} {HOST} {self.master.port} 1"),
                    ("sentinel down-after-milliseconds", f"{self.master_name} {self.down_after_ms}"),
                    ("sentinel failover-timeout", f"{self.master_name} {self.failover_timeout_ms}"),
                    ("sentinel parallel-syncs", f"{self.master_name} 1"),
                ],
            )
            self.sentinel.start()
            self.wait_healthy()
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def _wait_replica_synced(master: RedisServer, replica: RedisServer) -> None:
        def synced() -> bool:
            repl = replica.info("replication")
            return repl.get("master_link_status") == "up" and int(repl.get("master_port", -1)) == master.port

        wait_until(synced, what=f"replica {replica.port} to sync with master {master.port}")

    def master_addr(self) -> tuple[str, int] | None:
        """What the Sentinel reports as the master now (``SENTINEL get-master-addr-by-name``)."""
        assert self.sentinel is not None
        reply = self.sentinel.command("SENTINEL", "get-master-addr-by-name", self.master_name)
        return None if not reply else (reply[0], int(reply[1]))

    def current_master(self) -> RedisServer:
        """The RedisServer the Sentinel reports as master."""
        addr = self.master_addr()
        for server in self.servers:
            if addr is not None and server.port == addr[1]:
                return server
        raise ServerError(f"sentinel reports unknown master {addr}")

    def _sentinel_replicas(self) -> list[dict[str, str]]:
        assert self.sentinel is not None
        reply = self.sentinel.command("SENTINEL", "replicas", self.master_name)
        return [dict(zip(entry[::2], entry[1::2], strict=True)) for entry in reply]

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the Sentinel reports the master, and a replica that is in sync and known to it."""

        def healthy() -> bool:
            addr = self.master_addr()
            if addr is None:
                return False
            master = self.current_master()
            if master.info("replication").get("role") != "master":
                return False
            for server in self.servers:
                if server is master or not server.alive():
                    continue
                repl = server.info("replication")
                if repl.get("role") != "slave" or repl.get("master_link_status") != "up":
                    return False
                if int(repl.get("master_port", -1)) != master.port:
                    return False
                known = [r for r in self._sentinel_replicas() if int(r.get("port", -1)) == server.port]
                if (
                    not known
                    or "s_down" in known[0].get("flags", "")
                    or "disconnected" in known[0].get("flags", "")
                ):
                    return False
            return True

        wait_until(healthy, timeout=timeout, what="sentinel to report the master and an in-sync replica")

    def wait_for_failover(self, old: tuple[str, int] | None = None, timeout: float = 30.0) -> tuple[str, int]:
        """Wait until the Sentinel reports a master other than ``old`` (default: the current one)."""
        old = old or self.master_addr()

        def moved() -> tuple[str, int] | None:
            addr = self.master_addr()
            if addr is None or addr == old:
                return None
            server = self.current_master()
            return addr if server.info("replication").get("role") == "master" else None

        return wait_until(moved, timeout=timeout, what=f"sentinel failover away from {old}")

    def kill_master(self) -> RedisServer:
        """SIGKILL whichever server is master now; return it (``restart()`` it to rejoin as replica)."""
        master = self.current_master()
        master.kill()
        return master

    def rejoin(self, server: RedisServer) -> None:
        """Restart ``server`` (e.g. a killed old master) as a replica of the current master; wait healthy.

        Sentinel would convert a restarted old master by itself, but only after about 8 s; this is what an
        operator does and takes a fraction of a second.
        """
        master = self.current_master()
        server.extra_config = [(k, v) for k, v in server.extra_config if k != "replicaof"]
        server.extra_config.append(("replicaof", f"{HOST} {master.port}"))
        server.restart()
        self._wait_replica_synced(master, server)
        self.wait_healthy()

    def pause_master(self) -> RedisServer:
        """SIGSTOP whichever server is master now; return it (``resume()`` it later)."""
        master = self.current_master()
        master.pause()
        return master

    def sentinel_client(self, **kwargs: Any) -> Any:
        """A ``redis.sentinel.Sentinel`` (its connections are closed with the helper)."""
        from redis.sentinel import Sentinel

        kwargs.setdefault("socket_timeout", 5.0)
        client = Sentinel(self.sentinels, **kwargs)
        self._clients.extend(client.sentinels)
        return client

    def master_client(self, **kwargs: Any) -> Any:
        """A redis-py client that follows the master through the Sentinel (closed with the helper)."""
        client = self.sentinel_client(**kwargs).master_for(self.master_name, **kwargs)
        self._clients.append(client)
        return client

    def replica_client(self, **kwargs: Any) -> Any:
        """A redis-py client that reads from a replica through the Sentinel (closed with the helper)."""
        client = self.sentinel_client(**kwargs).slave_for(self.master_name, **kwargs)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        for server in (self.sentinel, self.replica, self.master):
            if server is not None:
                server.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> RedisSentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------

PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin/{}", "/usr/local/pgsql/bin/{}", "/usr/pgsql-*/bin/{}")
EXISTING_POSTGRES = (
    f"postgresql://postgres@{HOST}:5432/postgres",
    "postgresql://postgres@/postgres?host=/var/run/postgresql",
    "postgresql://postgres@/postgres?host=/tmp",
)


def _pg_binary(name: str) -> str | None:
    return find_binary(name, *(pattern.format(name) for pattern in PG_BIN_GLOBS))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise MissingService("psycopg (v3) is not installed") from None
    return psycopg


def _with_database(url: str, dbname: str) -> str:
    """Replace the database name in a ``postgresql://`` URL, keeping user, host and query."""
    head, sep, query = url.partition("?")
    scheme_and_auth, _, _ = head.rpartition("/")
    return f"{scheme_and_auth}/{dbname}{sep}{query}"


class PostgresServer:
    """A PostgreSQL server to create throwaway databases in.

    With ``prefer_existing=True`` it uses ``$BUTTRESS_TEST_POSTGRES_URL`` or the first reachable of
    ``EXISTING_POSTGRES`` (trust auth as ``postgres``) and never changes anything in it but the databases
    it creates. Otherwise (or if none answers) it runs ``initdb`` and ``postgres`` in a temporary directory
    on a free port, as the ``postgres`` user when the tests run as root.
    """

    def __init__(self, *, prefer_existing: bool = True) -> None:
        self.prefer_existing = prefer_existing
        self.admin_url: str | None = None
        self.private = False
        self.dir: Path | None = None
        self.port: int | None = None
        self.process: Process | None = None

    def start(self) -> PostgresServer:
        psycopg = _psycopg()
        if self.prefer_existing:
            candidates = [os.environ[POSTGRES_URL_ENV]] if os.environ.get(POSTGRES_URL_ENV) else []
            candidates += EXISTING_POSTGRES
            for url in candidates:
                try:
                    with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
                        conn.execute("SELECT 1")
                except psycopg.Error:
                    continue
                self.admin_url = url
                return self
            if os.environ.get(POSTGRES_URL_ENV):
                raise ServerError(f"${POSTGRES_URL_ENV} is set but does not accept connections")
        self._start_private()
        return self

    def _start_private(self) -> None:
        initdb = _pg_binary("initdb")
        postgres = _pg_binary("postgres")
        if initdb is None or postgres is None:
            missing = "initdb" if initdb is None else "postgres"
            raise MissingService(
                f"no PostgreSQL answers on {HOST}:5432 and `{missing}` was not found "
                "(apt-get install postgresql)"
            )
        user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise MissingService("running as root and there is no `postgres` user for initdb") from None
            user = "postgres"
        self.private = True
        self.dir = make_dir("postgres")
        try:
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            data = self.dir / "data"
            argv = [initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"]
            argv += ["--no-sync", "--no-instructions"]
            log = self.dir / "initdb.log"
            init = Process(argv, log=log, cwd=self.dir, user=user)
            init.start()
            init.wait(timeout=120)
            assert init.popen is not None
            if init.popen.returncode != 0:
                raise ServerError(f"initdb failed:\n{init.tail()}")
            for attempt in range(4):
                self.port = free_port()
                self.process = Process(
                    [
                        postgres,
                        "-D",
                        str(data),
                        "-p",
                        str(self.port),
                        "-k",
                        str(self.dir),
                        "-c",
                        f"listen_addresses={HOST}",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ],
                    log=self.dir / "postgres.log",
                    cwd=self.dir,
                    user=user,
                )
                self.process.start()
                self.admin_url = f"postgresql://postgres@{HOST}:{self.port}/postgres"
                try:
                    self._wait_ready()
                    return
                except ServerError:
                    if attempt == 3 or "in use" not in self.process.tail():
                        raise
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 30.0) -> None:
        psycopg = _psycopg()
        process = self.process
        assert process is not None
        assert self.admin_url is not None
        url = self.admin_url

        def ready() -> bool:
            if not process.alive():
                raise ServerError(f"postgres exited early:\n{process.tail()}")
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True

        try:
            wait_until(ready, timeout=timeout, interval=0.05, what=f"postgres on port {self.port}")
        except ServerError as exc:
            process.kill()
            raise ServerError(f"{exc}\n{process.tail()}") from None

    def connect_admin(self) -> Any:
        assert self.admin_url is not None, "PostgresServer is not started"
        return _psycopg().connect(self.admin_url, connect_timeout=5, autocommit=True)

    def create_database(self) -> str:
        """Create ``buttress_test_<random>`` and return its name."""
        name = f"buttress_test_{secrets.token_hex(6)}"
        with self.connect_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database created here, disconnecting whatever is still connected to it."""
        with self.connect_admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    def url_for(self, dbname: str) -> str:
        assert self.admin_url is not None
        return _with_database(self.admin_url, dbname)

    def close(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
            self.process.terminate(signal.SIGINT, timeout=15)
            self.process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresDatabase:
    """A throwaway database ``buttress_test_<random>``, dropped on close.

    Args:
        server: the PostgresServer to create it in; if None, one is found or started (and closed with
            this database).
        prefer_existing: passed to the PostgresServer created when ``server`` is None;
            ``False`` forces a private cluster.

    Attributes:
        url: ``postgresql://postgres@HOST:PORT/NAME`` (libpq URI: psycopg, asyncpg, psql accept it).
        dsn: the same as libpq ``key=value`` pairs.
        name: the database name.
    """

    def __init__(self, server: PostgresServer | None = None, *, prefer_existing: bool = True) -> None:
        self.server = server
        self._owns_server = server is None
        self.prefer_existing = prefer_existing
        self.name: str | None = None
        self._engines: list[Any] = []

    def start(self) -> PostgresDatabase:
        if self.server is None:
            self.server = PostgresServer(prefer_existing=self.prefer_existing)
        try:
            if self.server.admin_url is None:
                self.server.start()
            self.name = self.server.create_database()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def url(self) -> str:
        assert self.server is not None, "PostgresDatabase is not started"
        assert self.name is not None, "PostgresDatabase is closed"
        return self.server.url_for(self.name)

    @property
    def dsn(self) -> str:
        """libpq ``key=value`` connection string."""
        psycopg = _psycopg()
        params = psycopg.conninfo.conninfo_to_dict(self.url)
        return psycopg.conninfo.make_conninfo(**params)

    def sqlalchemy_url(self, driver: str = "psycopg") -> str:
        """The URL with a SQLAlchemy driver: ``postgresql+psycopg://…`` or ``postgresql+asyncpg://…``."""
        return self.url.replace("postgresql://", f"postgresql+{driver}://", 1)

    @property
    def private(self) -> bool:
        """True when the database lives in a server these helpers started."""
        return self.server is not None and self.server.private

    def connect(self, **kwargs: Any) -> Any:
        """A psycopg connection to the database (use it as a context manager)."""
        return _psycopg().connect(self.url, **kwargs)

    def engine(self, driver: str = "psycopg", **kwargs: Any) -> Any:
        """A SQLAlchemy engine for the database (disposed with the helper)."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.sqlalchemy_url(driver), **kwargs)
        self._engines.append(engine)
        return engine

    def close(self) -> None:
        for engine in self._engines:
            with contextlib.suppress(Exception):
                engine.dispose()
        self._engines.clear()
        try:
            if self.server is not None and self.name is not None:
                name, self.name = self.name, None
                self.server.drop_database(name)
        finally:
            if self.server is not None and self._owns_server:
                self.server.close()

    def __enter__(self) -> PostgresDatabase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
