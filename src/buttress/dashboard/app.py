"""The live dashboard as an ASGI app, mountable in any ASGI application.

::

    from buttress.dashboard import create_dashboard
    app.mount("/_buttress", create_dashboard())          # FastAPI / Starlette

Routes (relative to the mount point):

========================== ================================================================
``GET /``                  the page (HTML; charts drawn by uPlot, shipped in the wheel)
``GET /static/…``          the page's script, styles and the vendored uPlot with its licence
``GET /api/state``         the current numbers as JSON (one :meth:`LiveView.tick`)
``GET /api/stream``        the same every ``interval`` seconds as server-sent events
``POST /api/controls/…``   ``/{control}/{action}``: run an action of a control (the demo's
                           break and heal buttons); 404 for an unknown one
========================== ================================================================

One ticker task computes the numbers once per interval however many pages are open; each stream waits
for the next tick. The ticker runs only while a stream is open.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from buttress._extras import require
from buttress.dashboard.snapshot import LocalSource, Merged, SnapshotSource
from buttress.dashboard.view import LiveView

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["Control", "create_dashboard"]


@dataclass
class Control:
    """Something the dashboard can act on: a name, its current state, and named actions (buttons).

    Attributes:
        name: shown as the row's title and used in the URL.
        state: returns the current state to show (a small JSON-ready dict).
        actions: action name -> function (sync or async) run when its button is pressed.
        description: one line under the name.
    """

    name: str
    state: Callable[[], dict[str, Any]]
    actions: dict[str, Callable[[], Any]] = field(default_factory=dict)
    description: str = ""

    def row(self) -> dict[str, Any]:
        """The control as the dashboard shows it."""
        return {
            "name": self.name,
            "description": self.description,
            "state": self.state(),
            "actions": list(self.actions),
        }


class _Ticker:
    """Computes the view once per interval while someone listens, and wakes every listener."""

    def __init__(self, view: LiveView, interval: float) -> None:
        self.view = view
        self.interval = interval
        self.latest: dict[str, Any] | None = None
        self.version = 0
        self.listeners = 0
        self._changed: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _run(self) -> None:
        changed = self._condition()
        while self.listeners > 0:
            self.latest = self.view.tick()
            self.version += 1
            async with changed:
                changed.notify_all()
            await asyncio.sleep(self.interval)
        self._task = None

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        """Each new state, as it is computed."""
        self.listeners += 1
        try:
            if self._task is None:
                self._task = asyncio.ensure_future(self._run())
            seen = [-1]
            changed = self._condition()

            def fresh() -> bool:
                return self.version != seen[0] and self.latest is not None

            while True:
                async with changed:
                    await changed.wait_for(fresh)
                seen[0] = self.version
                assert self.latest is not None
                yield self.latest
        finally:
            self.listeners -= 1


def _clean(value: Any) -> Any:
    """JSON cannot hold NaN or infinity: they become null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class _Routes:
    """The dashboard's routes over one view, its ticker and its controls."""

    def __init__(self, view: LiveView, ticker: _Ticker, controls: dict[str, Control], page: str) -> None:
        from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse

        self.view = view
        self.ticker = ticker
        self.controls = controls
        self.page = page
        self._html = HTMLResponse
        self._json = JSONResponse
        self._streaming = StreamingResponse

    async def index(self, _request: Request) -> Response:
        """``GET /``: the page."""
        return self._html(self.page)

    async def state(self, _request: Request) -> Response:
        """``GET /api/state``: the ticker's latest numbers while it runs, else a tick computed now."""
        latest = self.ticker.latest if self.ticker.listeners else None
        return self._json(_clean(latest if latest is not None else self.view.tick()))

    async def stream(self, request: Request) -> Response:
        """``GET /api/stream``: every tick as a server-sent event, until the page goes away."""
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return self._streaming(self._events(request), media_type="text/event-stream", headers=headers)

    async def _events(self, request: Request) -> AsyncIterator[str]:
        # The reconnect delay first, so a browser that loses the stream comes back at the page's pace.
        yield f"retry: {int(self.ticker.interval * 1000)}\n\n"
        async for data in self.ticker.stream():
            if await request.is_disconnected():
                break
            yield f"data: {json.dumps(_clean(data), separators=(',', ':'))}\n\n"

    async def control(self, request: Request) -> Response:
        """``POST /api/controls/{name}/{action}``: run the action, answer the control's new state."""
        name, action = request.path_params["name"], request.path_params["action"]
        found = self.controls.get(name)
        if found is None or action not in found.actions:
            known = {n: list(c.actions) for n, c in self.controls.items()}
            return self._json(
                {"error": f"no control {name!r} with action {action!r}", "controls": known}, 404
            )
        result: Any = found.actions[action]()
        if inspect.isawaitable(result):
            await result
        return self._json({"name": name, "action": action, "state": found.state()})


def create_dashboard(
    source: SnapshotSource | None = None,
    *,
    title: str = "buttress",
    interval: float = 1.0,
    window: float = 10.0,
    controls: list[Control] | None = None,
    slo: Callable[[], list[dict[str, Any]]] | None = None,
    extras: Callable[[Merged], dict[str, Any]] | None = None,
) -> Any:
    """The dashboard app (Starlette), ready to mount at ``/_buttress``.

    Args:
        source: where the numbers come from: this process (default) or the merged snapshots of several
            workers (:class:`~buttress.dashboard.snapshot.DirectorySource`).
        title: the page's title.
        interval: seconds between updates pushed to the page.
        window: seconds over which rates and live percentiles are computed.
        controls: buttons to show (e.g. break and heal for each provider of the demo).
        slo: returns the SLO rows (name, objective, compliance, budget remaining, burn rates).
        extras: returns more numbers to show, from the merged telemetry.
    """
    require("starlette", "web")
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    if interval <= 0:
        raise ValueError(f"interval must be a positive number of seconds; got {interval!r}")
    by_name = {c.name: c for c in controls or ()}
    view = LiveView(
        source if source is not None else LocalSource(),
        window=window,
        slo=slo,
        controls=(lambda: [c.row() for c in by_name.values()]) if by_name else None,
        extras=extras,
    )
    static = resources.files("buttress.dashboard").joinpath("static")
    page = static.joinpath("index.html").read_text(encoding="utf-8").replace("{{title}}", title)
    routes = _Routes(view, _Ticker(view, interval), by_name, page)
    return Starlette(
        routes=[
            Route("/", routes.index, methods=["GET"]),
            Route("/api/state", routes.state, methods=["GET"]),
            Route("/api/stream", routes.stream, methods=["GET"]),
            Route("/api/controls/{name}/{action}", routes.control, methods=["POST"]),
            Mount("/static", StaticFiles(packages=[("buttress.dashboard", "static")]), name="static"),
        ]
    )


Action = Callable[[], Awaitable[Any] | Any]
