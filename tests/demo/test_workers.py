"""Two platform worker processes sharing one database and one Redis: a PATCH on one is seen by the other."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from buttress.demo import database, seed
from buttress.demo.serve import bind
from buttress.demo.settings import ENV, Settings

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _prepare(url: str) -> None:
    async def run() -> None:
        engine = database.create_engine(url)
        await database.migrate(engine)
        await seed.seed(engine)
        await engine.dispose()

    asyncio.run(run())


class Worker:
    def __init__(self, settings, name: str) -> None:
        self.sock = bind()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        fd = self.sock.fileno()
        env = {**os.environ, ENV: settings.for_worker(name).to_json()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "buttress.demo.worker", "--fd", str(fd)], env=env, pass_fds=(fd,)
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited with {self.process.returncode}"
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling for readiness with a deadline, not waiting for a state change
        raise AssertionError(f"{self.url} did not become ready")

    def cache_reads(self, namespace: str) -> dict[str, float]:
        text = self.client.get("/metrics").text
        out = {}
        for result in ("hit", "miss"):
            labels = rf'(?=[^}}]*namespace="{namespace}")(?=[^}}]*result="{result}")'
            pattern = rf"buttress_cache_requests_total\{{{labels}[^}}]*\}} (\S+)"
            m = re.search(pattern, text)
            out[result] = float(m.group(1)) if m else 0.0
        return out

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sock.close()


def test_patch_on_one_worker_is_seen_by_the_other(providers, redis_server, tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    _prepare(url)
    settings = Settings(
        database_url=url,
        state_dir=str(tmp_path),
        email_url=providers.email.url,
        storage_url=providers.storage.url,
        identity_url=providers.identity.url,
        redis_url=redis_server.url,
        seed=False,
        snapshot_interval=0,
    )
    a, b = Worker(settings, "a"), Worker(settings, "b")
    try:
        a.wait_ready()
        b.wait_ready()
        auth = {"Authorization": f"Bearer {providers.token}"}
        path = "/api/v1/events/batbern12"
        old = b.client.get(path).json()["data"]["title"]
        assert a.client.get(path).json()["data"]["title"] == old
        b.client.get("/api/v1/events/batbern13")  # an unrelated entry, cached in B
        assert b.client.get(path).json()["data"]["title"] == old  # B serves it from its cache

        patched = a.client.patch(path, json={"title": "BATbern12, renamed on worker A"}, headers=auth)
        assert patched.status_code == 200, patched.text
        assert (
            a.client.get(path).json()["data"]["title"] == "BATbern12, renamed on worker A"
        )  # read-your-write

        # B learns of the change over Redis pub/sub; poll it (a liveness bound, not a speed claim).
        t0 = time.monotonic()
        deadline = t0 + 5.0
        while b.client.get(path).json()["data"]["title"] != "BATbern12, renamed on worker A":
            assert time.monotonic() < deadline, "worker B never saw the PATCH made on worker A"
        print(f"worker B saw the change {1000 * (time.monotonic() - t0):.1f} ms after A answered")

        # Exactly what changed was evicted: the unrelated event is still a hit on B.
        before = b.cache_reads("events")
        b.client.get("/api/v1/events/batbern13")
        after = b.cache_reads("events")
        assert after["hit"] == before["hit"] + 1
        assert after["miss"] == before["miss"]
    finally:
        a.close()
        b.close()
