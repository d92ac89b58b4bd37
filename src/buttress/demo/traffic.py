"""The demo's traffic generator: the platform's real mix of requests, at a rate or flat out.

Most traffic is public reads — event details, the archive, the current event, speakers, companies and
company search — with Zipf-distributed popularity (a few recent events and well-known speakers get most
of the views, as on the real platform); a few percent are registrations for the open event and editors'
``PATCH`` updates, which invalidate cache entries and send confirmation emails.

Two modes:

* **open loop** (``rate=`` requests per second): arrivals are a Poisson process, so a slow server sees
  the queue build up, as it would with real users; ``concurrency`` bounds requests in flight, and an
  arrival that finds every slot taken is counted as ``dropped`` rather than delayed;
* **closed loop** (``rate=None``): ``concurrency`` clients each send the next request as soon as the last
  answered — the way to measure throughput.

Requests go through :class:`buttress.demo.http.Connection` (one keep-alive connection per concurrent
client), several times cheaper than a general-purpose client, so the generator is not what limits a
throughput measurement. Client-side latencies are kept per operation in
:class:`~buttress.telemetry.Sketch`es (1 % relative error), so the summary's percentiles are what a caller
saw, network and queueing included.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from buttress.demo.http import Connection, HttpError
from buttress.telemetry import Sketch

__all__ = ["MIX", "OpStats", "TrafficGenerator", "TrafficReport"]

#: Operation -> weight. Reads dominate; registrations are 2 %, editors' updates 0.6 %.
MIX: dict[str, float] = {
    "event_detail": 0.30,
    "events_list": 0.13,
    "current_event": 0.12,
    "event_sessions": 0.08,
    "speaker": 0.12,
    "speakers_list": 0.04,
    "company": 0.06,
    "company_search": 0.08,
    "registration": 0.02,
    "patch_event": 0.003,
    "patch_speaker": 0.003,
}

_LIST_QUERIES: tuple[dict[str, str], ...] = (
    {},
    {"page": "2"},
    {"page": "3"},
    {"sort": "title"},
    {"filter": json.dumps({"status": "archived"})},
    {"filter": json.dumps({"year": {"gte": 2020}})},
    {"filter": json.dumps({"topic": {"contains": "cloud"}})},
    {"limit": "50"},
)


@dataclass
class OpStats:
    """What one operation saw: requests, outcomes by status class, and latencies."""

    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latency: Sketch = field(default_factory=Sketch)

    def to_json(self) -> dict[str, Any]:
        """Counts and P50/P95/P99 in milliseconds."""
        q = self.latency.quantiles((0.5, 0.95, 0.99)) if self.latency.count else [0.0, 0.0, 0.0]
        return {
            "requests": self.requests,
            "errors": self.errors,
            "statuses": dict(sorted(self.statuses.items())),
            "p50_ms": q[0] * 1000,
            "p95_ms": q[1] * 1000,
            "p99_ms": q[2] * 1000,
        }


@dataclass
class TrafficReport:
    """Everything the generator sent, per operation, and over how long."""

    ops: dict[str, OpStats]
    elapsed: float
    dropped: int

    @property
    def requests(self) -> int:
        """Requests answered or failed (dropped arrivals excluded)."""
        return sum(s.requests for s in self.ops.values())

    @property
    def errors(self) -> int:
        """5xx answers and transport errors."""
        return sum(s.errors for s in self.ops.values())

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "elapsed_s": self.elapsed,
            "requests": self.requests,
            "errors": self.errors,
            "dropped": self.dropped,
            "throughput_rps": self.requests / self.elapsed if self.elapsed else 0.0,
            "ops": {name: s.to_json() for name, s in sorted(self.ops.items())},
        }


def _zipf(n: int, s: float) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


class TrafficGenerator:
    """Sends the platform's request mix to ``base_url``.

    Args:
        base_url: the platform, e.g. ``http://127.0.0.1:8000``.
        token: a bearer token the identity provider accepts (for PATCH).
        rate: requests per second (open loop); ``None`` for closed loop.
        concurrency: requests in flight at most (open loop) or clients (closed loop).
        mix: operation -> weight (default :data:`MIX`).
        seed: random seed, so two runs send the same sequence.
        zipf_s: the Zipf exponent of event and speaker popularity.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        rate: float | None = 100.0,
        concurrency: int = 16,
        mix: dict[str, float] | None = None,
        seed: int = 1,
        zipf_s: float = 1.1,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be a positive number of requests per second, or None; got {rate!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1; got {concurrency!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.rate = rate
        self.concurrency = concurrency
        weights = mix or MIX
        unknown = set(weights) - set(MIX)
        if unknown:
            raise ValueError(f"unknown operation(s) {sorted(unknown)}; known: {', '.join(MIX)}")
        self._ops = list(weights)
        self._weights = list(itertools.accumulate(weights[o] for o in self._ops))
        self.rng = random.Random(seed)
        self.zipf_s = zipf_s
        self.stats: dict[str, OpStats] = {op: OpStats() for op in self._ops}
        self.dropped = 0
        self._emails = itertools.count(1)
        self._run = f"{seed}-{int(time.time())}"
        self._events: list[str] = []
        self._speakers: list[str] = []
        self._companies: list[str] = []
        self._ew: list[float] = []
        self._sw: list[float] = []
        self._cw: list[float] = []
        self._current = ""

    async def discover(self, client: Connection) -> None:
        """Learn event codes, usernames and company names from the API (most popular first)."""
        listing = await client.request("GET", "/api/v1/events", params={"limit": "100", "sort": "-date"})
        self._events = [e["code"] for e in listing.json()["data"]]
        speakers: list[dict[str, Any]] = []
        for page in ("1", "2", "3"):
            body = (
                await client.request("GET", "/api/v1/speakers", params={"limit": "100", "page": page})
            ).json()
            speakers.extend(body["data"])
        self.rng.shuffle(speakers)
        self._speakers = [s["username"] for s in speakers]
        self._companies = sorted({s["company"] for s in speakers if s["company"]})
        self.rng.shuffle(self._companies)
        current = await client.request("GET", "/api/v1/events/current")
        self._current = current.json()["data"]["code"] if current.status_code == 200 else self._events[0]
        self._ew = list(itertools.accumulate(_zipf(len(self._events), self.zipf_s)))
        self._sw = list(itertools.accumulate(_zipf(len(self._speakers), self.zipf_s)))
        self._cw = list(itertools.accumulate(_zipf(len(self._companies), self.zipf_s)))

    def _pick(self, items: Sequence[str], cum: list[float]) -> str:
        return self.rng.choices(items, cum_weights=cum)[0]

    def next_request(self) -> tuple[str, str, str, dict[str, Any]]:
        """The next request of the mix: ``(operation, method, path, keyword arguments of a request)``."""
        op = self.rng.choices(self._ops, cum_weights=self._weights)[0]
        rng = self.rng
        if op == "event_detail":
            code = self._pick(self._events, self._ew)
            return op, "GET", f"/api/v1/events/{code}", {"params": {"include": "venue,sessions,speakers"}}
        if op == "events_list":
            return op, "GET", "/api/v1/events", {"params": rng.choice(_LIST_QUERIES)}
        if op == "current_event":
            return op, "GET", "/api/v1/events/current", {}
        if op == "event_sessions":
            return op, "GET", f"/api/v1/events/{self._pick(self._events, self._ew)}/sessions", {}
        if op == "speaker":
            return op, "GET", f"/api/v1/speakers/{self._pick(self._speakers, self._sw)}", {}
        if op == "speakers_list":
            return op, "GET", "/api/v1/speakers", {"params": {"page": str(rng.randint(1, 3))}}
        if op == "company":
            return op, "GET", f"/api/v1/companies/{self._pick(self._companies, self._cw)}", {}
        if op == "company_search":
            name = self._pick(self._companies, self._cw)
            return op, "GET", "/api/v1/companies/search", {"params": {"q": name[: rng.randint(2, 4)]}}
        auth = {"Authorization": f"Bearer {self.token}"}
        if op == "registration":
            n = next(self._emails)
            body = {
                "first_name": "Visitor",
                "last_name": f"N{n}",
                "email": f"visitor-{self._run}-{n}@example.com",
            }
            return op, "POST", f"/api/v1/events/{self._current}/registrations", {"json_body": body}
        if op == "patch_event":
            code = self._pick(self._events, self._ew)
            body = {"description": f"Updated by the traffic generator at {time.time():.3f}."}
            return op, "PATCH", f"/api/v1/events/{code}", {"json_body": body, "headers": auth}
        username = self._pick(self._speakers, self._sw)
        body = {"bio": f"Profile updated by the traffic generator at {time.time():.3f}."}
        return op, "PATCH", f"/api/v1/speakers/{username}", {"json_body": body, "headers": auth}

    async def _send(self, client: Connection, request: tuple[str, str, str, dict[str, Any]]) -> None:
        op, method, path, kwargs = request
        stats = self.stats[op]
        t0 = time.perf_counter()
        try:
            response = await client.request(method, path, **kwargs)
            status = f"{response.status_code // 100}xx"
            failed = response.status_code >= 500
        except HttpError:
            status, failed = "transport", True
        stats.latency.add(time.perf_counter() - t0)
        stats.requests += 1
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if failed:
            stats.errors += 1

    async def run(self, duration: float | None = None, *, stop: asyncio.Event | None = None) -> TrafficReport:
        """Send traffic for ``duration`` seconds, or until ``stop`` is set; returns the report."""
        stop = stop or asyncio.Event()
        connections = [Connection(self.base_url) for _ in range(self.concurrency)]
        try:
            if not self._events:
                await self.discover(connections[0])
            start = time.perf_counter()
            deadline = None if duration is None else start + duration
            if self.rate is None:
                await self._closed_loop(connections, stop, deadline)
            else:
                await self._open_loop(connections, stop, deadline)
            elapsed = time.perf_counter() - start
        finally:
            for c in connections:
                await c.close()
        return TrafficReport(self.stats, elapsed, self.dropped)

    async def _closed_loop(
        self, connections: list[Connection], stop: asyncio.Event, deadline: float | None
    ) -> None:
        def over() -> bool:
            return stop.is_set() or (deadline is not None and time.perf_counter() >= deadline)

        async def worker(client: Connection) -> None:
            while not over():
                await self._send(client, self.next_request())

        await asyncio.gather(*(worker(c) for c in connections))

    async def _open_loop(
        self, connections: list[Connection], stop: asyncio.Event, deadline: float | None
    ) -> None:
        idle = list(connections)
        pending: set[asyncio.Task[None]] = set()
        next_at = time.perf_counter()

        async def one(client: Connection, request: tuple[str, str, str, dict[str, Any]]) -> None:
            try:
                await self._send(client, request)
            finally:
                idle.append(client)

        while not stop.is_set():
            now = time.perf_counter()
            if deadline is not None and now >= deadline:
                break
            if next_at > now:
                try:
                    await asyncio.wait_for(stop.wait(), next_at - now)
                except TimeoutError:
                    pass
                continue
            assert self.rate is not None
            next_at += self.rng.expovariate(self.rate)  # read each time: set_rate() changes a running loop
            if not idle:
                self.dropped += 1
                continue
            task = asyncio.ensure_future(one(idle.pop(), self.next_request()))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def set_rate(self, rate: float | None) -> None:
        """Change the rate of an open-loop run while it runs (``None`` is not allowed mid-run)."""
        if rate is None or rate <= 0:
            raise ValueError("rate must be a positive number of requests per second")
        self.rate = rate
