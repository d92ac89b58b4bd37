"""What one platform process needs to know: where its database, providers, caches and state are.

The runner builds one :class:`Settings` and hands it to every worker process as JSON in the environment
(``BUTTRESS_DEMO_SETTINGS``), so all workers share the same database, Redis and provider URLs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["ENV", "Settings"]

#: The environment variable a worker process reads its settings from.
ENV = "BUTTRESS_DEMO_SETTINGS"


@dataclass(frozen=True)
class Settings:
    """The settings of one platform process.

    Attributes:
        database_url: ``sqlite:///…`` or ``postgresql://…``.
        state_dir: where SQLite files (dead letters, SLO history) and telemetry snapshots live.
        email_url: base URL of the email provider.
        storage_url: base URL of the object storage provider.
        identity_url: base URL of the identity provider.
        cache: serve hot paths through buttress's cache (off: every read goes to the database).
        redis_url: two-tier cache (memory L1, Redis L2), cross-worker invalidation and the dead-letter
            queue on Redis Streams, when set.
        config_path: a buttress.toml to use instead of the demo's embedded defaults.
        worker: this process's name, for telemetry snapshots.
        seed: create the schema and seed data on startup when the database is empty.
        controls: show break/heal buttons for the providers on the dashboard.
        snapshot_interval: seconds between telemetry snapshots for the dashboard (0: off).
    """

    database_url: str
    state_dir: str
    email_url: str
    storage_url: str
    identity_url: str
    cache: bool = True
    redis_url: str | None = None
    config_path: str | None = None
    worker: str = "0"
    seed: bool = True
    controls: bool = True
    snapshot_interval: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The settings as one JSON string."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Settings from :meth:`to_json`'s output."""
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from ``$BUTTRESS_DEMO_SETTINGS``.

        Raises:
            RuntimeError: when the variable is not set (the process was not started by the runner).
        """
        text = os.environ.get(ENV)
        if not text:
            raise RuntimeError(f"{ENV} is not set; start workers with `buttress demo`")
        return cls.from_json(text)

    def for_worker(self, worker: str) -> Settings:
        """A copy for worker ``worker``."""
        return replace(self, worker=worker)
