"""What the platform shows about itself: SLO tracking and the live dashboard with provider controls.

* Every route is timed by :class:`~buttress.slo.SLOMiddleware` into the platform's
  :class:`~buttress.slo.HttpRecorder`; an :class:`~buttress.slo.SLOMonitor` closes each minute into the
  SLO history store shared by all workers (``<state>/slo.db``).
* The dashboard's SLO rows come from an engine fed from that store, so with several workers they count
  every worker's requests, not only those of the worker that serves the page.
* The dashboard's numbers are the merged telemetry snapshots of every worker; its controls break and heal
  each provider through the provider's own ``/_chaos`` endpoint, as an operator would.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.dashboard.snapshot import Merged
    from buttress.demo.platform import Platform

__all__ = ["SLOView", "dashboard_for", "provider_controls"]

_BURN_WINDOWS = ("5m", "1h", "6h")


class SLOView:
    """SLO status for the dashboard, recomputed from the shared history store once a minute.

    Args:
        specs: the SLOs.
        store: the history store every worker's monitor writes.
    """

    def __init__(self, specs: list[Any], store: Any) -> None:
        self.specs = specs
        self.store = store
        self._minute = -1
        self._rows: list[dict[str, Any]] = []

    def rows(self) -> list[dict[str, Any]]:
        """One row per SLO: objective, compliance (``None`` before traffic), budget left, burn rates."""
        from buttress.slo import SLOEngine
        from buttress.telemetry import EventStream, Registry

        minute = int(time.time() // 60)
        if minute == self._minute:
            return self._rows
        self._minute = minute
        # A throwaway engine: its gauges and alert events belong to the monitors, not to this view.
        engine = SLOEngine(self.specs, registry=Registry(), events=EventStream())
        now = minute * 60.0
        for m, samples in self.store.minutes(now - 3 * 86400.0, now):
            engine.ingest(m, samples)
        rows = []
        for spec in self.specs:
            status = engine.status(spec.name)
            rows.append(
                {
                    "name": status.name,
                    "objective": status.objective,
                    "compliance": status.sli_value if status.total else None,
                    "budget_remaining": status.budget_remaining if status.total else None,
                    "requests": status.total,
                    "burn_rates": {w: status.burn_rates[w] for w in _BURN_WINDOWS if w in status.burn_rates},
                }
            )
        self._rows = rows
        return rows


def provider_controls(platform: Platform) -> list[Any]:
    """Break and heal buttons for each provider, acting on the provider's ``/_chaos`` endpoint."""
    from buttress.dashboard import Control

    urls = {
        "email": platform.settings.email_url,
        "storage": platform.settings.storage_url,
        "identity": platform.settings.identity_url,
    }
    known: dict[str, dict[str, Any]] = {name: {} for name in urls}

    def control(name: str, url: str) -> Any:
        async def act(action: str) -> None:
            response = await platform.http.post(f"{url}/_chaos/{action}")
            data = response.json()
            known[name] = {"down": data["down"], "calls": data["calls"], "failed": data["failed"]}

        async def do_break() -> None:
            await act("break")

        async def do_heal() -> None:
            await act("heal")

        return Control(
            name=name,
            state=lambda: known[name],
            actions={"break": do_break, "heal": do_heal},
            description=f"the {name} provider at {url}",
        )

    async def refresh() -> None:
        # The state shown between clicks: providers are asked every two seconds, off the tick.
        while True:
            for name, url in urls.items():
                try:
                    data = (await platform.http.get(f"{url}/_chaos")).json()
                    known[name] = {"down": data["down"], "calls": data["calls"], "failed": data["failed"]}
                except Exception:
                    known[name] = {"down": "unreachable"}
            await asyncio.sleep(2.0)

    platform.spawn(refresh(), "provider chaos state")
    return [control(name, url) for name, url in urls.items()]


def _extras(merged: Merged) -> dict[str, Any]:
    # Dead letters and fallbacks are the resilience parts' own counters, not the demo's.
    return {
        "registrations confirmed": merged.value("buttress_demo_registrations", status="confirmed"),
        "registrations waitlisted": merged.value("buttress_demo_registrations", status="waitlisted"),
        "emails sent": merged.value("buttress_demo_confirmation_emails", outcome="sent"),
        "emails dead-lettered": merged.value("buttress_dlq_items", policy="email", kind="dead_lettered"),
        "emails replayed": merged.value("buttress_dlq_items", policy="email", kind="replayed"),
        "email replays failed": merged.value("buttress_dlq_items", policy="email", kind="replay_failed"),
        "placeholder images served": merged.value("buttress_fallback_calls", name="storage", kind="fallback"),
        "recent tokens accepted": merged.value("buttress_fallback_calls", name="identity", kind="fallback"),
        "database queries": merged.value("buttress_db_queries"),
    }


def dashboard_for(platform: Platform, slo_view: SLOView | None) -> Any:
    """The dashboard app of the platform: merged worker telemetry, SLO rows, provider controls."""
    from buttress.dashboard import DirectorySource, LocalSource, create_dashboard

    settings = platform.settings
    if settings.snapshot_interval > 0:
        source: Any = DirectorySource(os.path.join(settings.state_dir, "telemetry"))
    else:
        source = LocalSource(platform.registry, platform.events)
    return create_dashboard(
        source,
        title="buttress demo — event platform",
        controls=provider_controls(platform) if settings.controls else None,
        slo=slo_view.rows if slo_view is not None else None,
        extras=_extras,
    )
