"""The ``[telemetry]`` configuration section: webhooks for alerts and the Prometheus endpoint."""

from __future__ import annotations

from buttress.config import Duration, Integer, ListOf, String, Table

#: ``[telemetry]``: where alerts are POSTed, and how hard to try.
SCHEMA = Table(
    fields={
        "webhooks": ListOf(
            item=String(pattern=r"https?://\S+"), default=[], doc="URLs that receive alert JSON"
        ),
        "webhook_timeout": Duration(default=5.0, positive=True, doc="per attempt"),
        "webhook_attempts": Integer(default=3, minimum=1, maximum=20),
        "webhook_backoff": Duration(default=1.0, doc="first retry delay; doubles each retry"),
    }
)
