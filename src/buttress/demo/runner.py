"""``buttress demo``: the platform, its providers and a traffic generator, started together.

:class:`Demo` does, in order:

1. create the schema and seed data (once; a later run reuses the database);
2. start the three provider services (email, storage, identity) on free ports, in this process;
3. bind the platform's port and start ``workers`` platform processes that share it;
4. start the traffic generator and any scripted provider outages (``--outage email:20:15``);
5. at the end (``duration`` elapsed, or Ctrl-C), stop the traffic, stop the workers gracefully so each
   writes its final telemetry, and build the :class:`Summary` from the merged telemetry and the
   generator's own measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buttress.demo.providers.chaos import Chaos
from buttress.demo.settings import ENV, Settings
from buttress.resilience.dlq.base import redact

__all__ = ["Demo", "DemoOptions", "Outage", "Summary"]


@dataclass(frozen=True)
class Outage:
    """A scripted provider outage: ``provider`` is down from ``start`` for ``length`` seconds."""

    provider: str
    start: float
    length: float

    @classmethod
    def parse(cls, text: str) -> Outage:
        """``"email:20:15"``: email down from second 20 for 15 seconds.

        Raises:
            ValueError: naming the expected form.
        """
        parts = text.split(":")
        if len(parts) != 3 or parts[0] not in ("email", "storage", "identity"):
            raise ValueError(
                f"outage {text!r}: expected PROVIDER:START:LENGTH with PROVIDER email, storage or identity"
            )
        try:
            start, length = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"outage {text!r}: START and LENGTH are seconds, e.g. email:20:15") from None
        if start < 0 or length <= 0:
            raise ValueError(f"outage {text!r}: START must be >= 0 and LENGTH > 0")
        return cls(parts[0], start, length)


def _check_sqlite_directory(url: str) -> None:
    """Refuse a SQLite file whose directory does not exist, naming it.

    SQLite creates the file, not its directory; the driver would only say "unable to open database
    file" (and aiosqlite's failed connection leaves a thread that reports to the closed event loop at
    exit, printing a traceback after the error).

    Raises:
        RuntimeError: naming the missing directory.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    folder = Path(parsed.database).absolute().parent
    if not folder.is_dir():
        raise RuntimeError(
            f"cannot prepare the database {url}: the directory {folder} does not exist; "
            "create it or choose another --database-url"
        )


@dataclass
class DemoOptions:
    """What ``buttress demo`` was asked to do (see the command's ``--help``)."""

    duration: float | None = None
    redis_url: str | None = None
    workers: int = 1
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    rate: float | None = 40.0
    concurrency: int = 16
    cache: bool = True
    state_dir: str | None = None
    outages: list[Outage] = field(default_factory=list)
    traffic: bool = True
    seed: int = 1
    config_path: str | None = None

    def problems(self) -> list[str]:
        """Every problem with these options, as sentences (empty when they can run)."""
        out = []
        if self.workers < 1:
            out.append("--workers must be at least 1")
        if self.workers > 1 and not self.redis_url and self.cache:
            out.append(
                "--workers > 1 needs --redis-url: the workers share their cache and invalidations through "
                "Redis (or pass --no-cache)"
            )
        if self.duration is not None and self.duration <= 0:
            out.append("--duration must be a positive number of seconds")
        if self.rate is not None and self.rate <= 0:
            out.append("--rate must be a positive number of requests per second")
        if not 0 <= self.port <= 65535:
            out.append("--port must be from 0 to 65535")
        return out


@dataclass
class Summary:
    """What a bounded run did: traffic, per-endpoint latency, cache, breakers, dead letters."""

    elapsed: float
    traffic: dict[str, Any]
    endpoints: list[dict[str, Any]]
    cache: list[dict[str, Any]]
    transitions: list[dict[str, Any]]
    emails: dict[str, float]
    db_queries: float
    outages: list[dict[str, Any]]
    dead_letters: dict[str, Any]
    fallbacks: dict[str, float] = field(default_factory=dict)
    started: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "started": self.started,
            "elapsed_s": self.elapsed,
            "traffic": self.traffic,
            "endpoints": self.endpoints,
            "cache": self.cache,
            "transitions": self.transitions,
            "emails": self.emails,
            "dead_letters": self.dead_letters,
            "fallbacks": self.fallbacks,
            "db_queries": self.db_queries,
            "db_queries_per_s": self.db_queries / self.elapsed if self.elapsed else 0.0,
            "outages": self.outages,
        }


class Demo:
    """The running demo: providers, workers and traffic (see the module docstring).

    Args:
        options: what to run.
        log: prints one line of progress (the CLI passes the console's print).
    """

    def __init__(self, options: DemoOptions, log: Any = print) -> None:
        problems = options.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.options = options
        self.log = log
        self.state_dir = Path(options.state_dir or os.path.join(os.getcwd(), ".buttress", "demo")).resolve()
        self.database_url = options.database_url or f"sqlite:///{self.state_dir / 'demo.db'}"
        self.token = secrets.token_urlsafe(24)
        self.chaos = {name: Chaos() for name in ("email", "storage", "identity")}
        self.providers: dict[str, Any] = {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.sock: Any = None
        self.url = ""
        self.settings: Settings | None = None
        self.stop_event = asyncio.Event()
        self.outage_log: list[dict[str, Any]] = []
        self.generator: Any = None
        self.dead_letter_store = ""
        self._started = 0.0

    @property
    def telemetry_dir(self) -> Path:
        """Where the workers write their telemetry snapshots."""
        return self.state_dir / "telemetry"

    async def prepare_database(self) -> None:
        """Create the schema and the seed data (a no-op on a database that has them)."""
        from buttress.demo import database, seed

        self.state_dir.mkdir(parents=True, exist_ok=True)
        _check_sqlite_directory(self.database_url)
        engine = database.create_engine(self.database_url)
        try:
            await database.migrate(engine, dead_letter_store=self.dead_letter_store or None)
            t0 = time.perf_counter()
            if await seed.seed(engine):
                self.log(f"seeded the database in {time.perf_counter() - t0:.2f} s")
        finally:
            await engine.dispose()

    async def start_providers(self) -> None:
        """Start email, storage and identity on free ports in this process's event loop."""
        from buttress.demo.providers.email import create_email_app
        from buttress.demo.providers.identity import create_identity_app
        from buttress.demo.providers.storage import create_storage_app
        from buttress.demo.serve import BackgroundServer

        apps = {
            "email": create_email_app(self.chaos["email"]),
            "storage": create_storage_app(self.chaos["storage"]),
            "identity": create_identity_app(
                self.chaos["identity"], {self.token: {"subject": "demo-editor", "roles": ["editor"]}}
            ),
        }
        for name, app in apps.items():
            self.providers[name] = await BackgroundServer(app, self.options.host).start_task()

    def start_workers(self) -> None:
        """Bind the platform's port and start the worker processes on it."""
        from buttress.demo.serve import bind

        try:
            self.sock = bind(self.options.host, self.options.port)
        except OSError as exc:
            raise RuntimeError(
                f"cannot listen on {self.options.host}:{self.options.port} ({exc.strerror}); "
                "pick another port with --port (0 picks a free one)"
            ) from None
        port = self.sock.getsockname()[1]
        self.url = f"http://{self.options.host}:{port}"
        self.settings = Settings(
            database_url=self.database_url,
            state_dir=str(self.state_dir),
            email_url=self.providers["email"].url,
            storage_url=self.providers["storage"].url,
            identity_url=self.providers["identity"].url,
            cache=self.options.cache,
            redis_url=self.options.redis_url,
            config_path=self.options.config_path,
            seed=False,
            controls=True,
            extra={"providers": {n: s.url for n, s in self.providers.items()}},
        )
        self.telemetry_dir.mkdir(parents=True, exist_ok=True)
        for old in self.telemetry_dir.glob("*.json"):
            old.unlink()
        fd = self.sock.fileno()
        for i in range(self.options.workers):
            env = {**os.environ, ENV: self.settings.for_worker(str(i)).to_json()}
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "buttress.demo.worker", "--fd", str(fd)], env=env, pass_fds=(fd,)
                )
            )

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait until the platform answers ``/health`` (a worker that dies fails this at once)."""
        import httpx

        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while True:
                for w in self.workers:
                    if w.poll() is not None:
                        raise RuntimeError(f"worker {w.pid} exited with code {w.returncode} during startup")
                try:
                    if (await client.get("/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the platform did not answer {self.url}/health within {timeout:.0f} s"
                    )
                await asyncio.sleep(0.1)

    async def _outage(self, outage: Outage) -> None:
        await asyncio.sleep(outage.start)
        entry = {"provider": outage.provider, "down_at": time.time(), "healed_at": None}
        self.outage_log.append(entry)
        self.chaos[outage.provider].update({"down": True})
        self.log(f"outage: {outage.provider} is down for {outage.length:g} s")
        try:
            await asyncio.sleep(outage.length)
        finally:
            self.chaos[outage.provider].heal()
            entry["healed_at"] = time.time()
            self.log(f"outage: {outage.provider} is back")

    async def run(self) -> Summary:
        """Run until the duration elapses or :attr:`stop_event` is set; returns the summary."""
        from sqlalchemy.exc import SQLAlchemyError

        from buttress.demo.traffic import TrafficGenerator
        from buttress.demo.wiring import dead_letter_store, demo_config

        opts = self.options
        # Checked here, before anything starts, so a bad file is one clear error (exit 2).
        cfg = demo_config(opts.config_path)
        self.dead_letter_store = dead_letter_store(
            cfg, state_dir=str(self.state_dir), redis_url=opts.redis_url
        )
        try:
            await self.prepare_database()
        except SQLAlchemyError as exc:
            raise RuntimeError(f"cannot prepare the database {self.database_url}: {exc.args[0]}") from None
        await self.start_providers()
        try:
            self.start_workers()
            await self.wait_healthy()
            self._started = time.time()
            self.log(f"platform:  {self.url}/  ({opts.workers} worker{'s' if opts.workers > 1 else ''})")
            self.log(f"dashboard: {self.url}/_buttress/")
            self.log(f"API:       {self.url}/api/v1/events   docs: {self.url}/api/docs")
            for name, server in self.providers.items():
                self.log(f"provider {name:8s} {server.url}  (chaos: {server.url}/_chaos)")
            store = redact(self.dead_letter_store)
            self.log(f"dead letters: {store}  (list them: buttress dlq list --store {store})")
            outages = [asyncio.ensure_future(self._outage(o)) for o in opts.outages]
            report = None
            if opts.traffic:
                self.generator = TrafficGenerator(
                    self.url, token=self.token, rate=opts.rate, concurrency=opts.concurrency, seed=opts.seed
                )
                report = await self.generator.run(opts.duration, stop=self.stop_event)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), opts.duration)
            for task in outages:
                task.cancel()
            await asyncio.gather(*outages, return_exceptions=True)
            elapsed = time.time() - self._started
        finally:
            await self.stop()
        return self.summary(report, elapsed)

    async def stop(self) -> None:
        """Stop the workers (gracefully, then by force) and the providers."""
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for w in self.workers:
            while w.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if w.poll() is None:
                w.kill()
                w.wait()
        if self.sock is not None:
            self.sock.close()
        for server in self.providers.values():
            await server.stop_task()

    def summary(self, report: Any, elapsed: float) -> Summary:
        """Build the run's :class:`Summary` from the workers' final telemetry and the traffic report."""
        from buttress.dashboard.snapshot import DirectorySource
        from buttress.dashboard.view import endpoint_table

        merged = DirectorySource(self.telemetry_dir).read()
        endpoints = endpoint_table(merged)
        cache = []
        for ns in sorted({lab["namespace"] for lab, _ in merged.series("buttress_cache_requests")}):
            hits = merged.value("buttress_cache_requests", namespace=ns, result="hit")
            misses = merged.value("buttress_cache_requests", namespace=ns, result="miss")
            total = hits + misses
            cache.append(
                {"namespace": ns, "hits": hits, "misses": misses, "hit_rate": hits / total if total else None}
            )
        transitions = [
            {
                "time": e["time"],
                "name": e["name"],
                "from": e["from_state"],
                "to": e["to_state"],
                "worker": e.get("worker"),
            }
            for e in merged.events
            if e.get("kind") == "state_transition" and e.get("source") == "circuitbreaker"
        ]

        # Dead letters and fallbacks as buttress.resilience counted them (the email queue's own metrics).
        def dlq(kind: str) -> float:
            return merged.value("buttress_dlq_items", policy="email", kind=kind)

        emails = {
            "sent": merged.value("buttress_demo_confirmation_emails", outcome="sent"),
            "dead_lettered": dlq("dead_lettered"),
            "replayed": dlq("replayed"),
        }
        dead = {
            "store": redact(self.dead_letter_store),
            "depth": merged.shared("buttress_dlq_depth", policy="email"),
            "dead_lettered": dlq("dead_lettered"),
            "replayed": dlq("replayed"),
            "replay_failed": dlq("replay_failed"),
        }
        fallbacks = {
            name: merged.value("buttress_fallback_calls", name=name, kind="fallback")
            for name in ("storage", "identity")
        }
        return Summary(
            elapsed=elapsed,
            traffic=report.to_json() if report is not None else {},
            endpoints=endpoints,
            cache=cache,
            transitions=transitions,
            emails=emails,
            db_queries=merged.value("buttress_db_queries"),
            outages=self.outage_log,
            dead_letters=dead,
            fallbacks=fallbacks,
            started=self._started,
        )
