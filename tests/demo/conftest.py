"""Fixtures of the demo's tests: real provider services and the platform app on real sockets."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from buttress.demo.app import create_app
from buttress.demo.providers.chaos import Chaos
from buttress.demo.providers.email import EmailOutbox, create_email_app
from buttress.demo.providers.identity import create_identity_app
from buttress.demo.providers.storage import create_storage_app
from buttress.demo.serve import BackgroundServer
from buttress.demo.settings import Settings
from buttress.telemetry import EventStream, Registry


@dataclass
class Providers:
    """The three provider services, their chaos switches and the email outbox."""

    email: BackgroundServer
    storage: BackgroundServer
    identity: BackgroundServer
    chaos: dict[str, Chaos]
    outbox: EmailOutbox
    token: str

    def heal(self) -> None:
        for c in self.chaos.values():
            c.heal()


@pytest.fixture(scope="module")
def providers() -> Iterator[Providers]:
    chaos = {name: Chaos(seed=7) for name in ("email", "storage", "identity")}
    outbox = EmailOutbox()
    token = secrets.token_urlsafe(16)
    servers = {
        "email": BackgroundServer(create_email_app(chaos["email"], outbox)).start_thread(),
        "storage": BackgroundServer(create_storage_app(chaos["storage"])).start_thread(),
        "identity": BackgroundServer(
            create_identity_app(chaos["identity"], {token: {"subject": "editor", "roles": ["editor"]}})
        ).start_thread(),
    }
    try:
        yield Providers(chaos=chaos, outbox=outbox, token=token, **servers)
    finally:
        for server in servers.values():
            server.stop_thread()


@dataclass
class RunningApp:
    """The platform app served on a real socket."""

    server: BackgroundServer
    settings: Settings
    app: Any
    registry: Registry
    events: EventStream
    token: str
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def platform(self) -> Any:
        return self.app.state.platform

    def client(self, **kwargs: Any) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=30, **kwargs)
        self.clients.append(c)
        return c

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_settings(providers: Providers, database_url: str, state_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        state_dir=str(state_dir),
        email_url=providers.email.url,
        storage_url=providers.storage.url,
        identity_url=providers.identity.url,
        snapshot_interval=0,
        **overrides,
    )


@pytest.fixture(scope="module")
def start_app(providers: Providers) -> Iterator[Callable[..., RunningApp]]:
    started: list[RunningApp] = []

    def start(settings: Settings, **kwargs: Any) -> RunningApp:
        # Each platform counts and publishes on its own, as one worker process does.
        registry, events = Registry(), EventStream()
        app = create_app(settings, registry=registry, events=events, **kwargs)
        server = BackgroundServer(app, lifespan="on").start_thread(timeout=60)
        running = RunningApp(server, settings, app, registry, events, providers.token)
        started.append(running)
        return running

    yield start
    for running in started:
        for c in running.clients:
            c.close()
        running.server.stop_thread()


@pytest.fixture(scope="module")
def sqlite_app(
    start_app: Callable[..., RunningApp], providers: Providers, tmp_path_factory: Any
) -> RunningApp:
    state = tmp_path_factory.mktemp("demo-sqlite")
    return start_app(make_settings(providers, f"sqlite:///{state}/demo.db", state))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(
    request: pytest.FixtureRequest,
    start_app: Callable[..., RunningApp],
    providers: Providers,
    tmp_path_factory: Any,
) -> Iterator[RunningApp]:
    """The platform on SQLite and on PostgreSQL (a throwaway database), one module each."""
    state = tmp_path_factory.mktemp(f"demo-{request.param}")
    if request.param == "sqlite":
        yield start_app(make_settings(providers, f"sqlite:///{state}/demo.db", state))
        return
    import servers

    server = request.getfixturevalue("postgres_server")
    with servers.running(servers.PostgresDatabase, server) as database:
        yield start_app(make_settings(providers, database.url, state))


@pytest.fixture(scope="module")
def settings_for(providers: Providers) -> Callable[..., Settings]:
    """``settings_for(database_url, state_dir, **overrides)``: settings pointing at the providers."""

    def build(database_url: str, state_dir: Path, **overrides: Any) -> Settings:
        return make_settings(providers, database_url, state_dir, **overrides)

    return build
