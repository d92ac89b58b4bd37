"""HTTP middleware that records latency and outcomes per route template: ASGI, WSGI (Flask) and Django.

The route template is read from what the framework already decided — never re-matched:

* ASGI (Starlette, FastAPI): ``scope["route"].path`` after the app ran (the router stores the matched route
  in the scope; a ``Mount`` prefix is recovered from ``root_path``);
* WSGI (Flask, any werkzeug app): ``environ["werkzeug.request"].url_rule.rule``;
* Django: ``request.resolver_match.route``.

A request that matched no route is counted under ``route="<unmatched>"``, so scanners probing random paths
add one series, not one per path. Excluded paths (``/metrics``, health checks) are not timed at all.

Per request the ASGI middleware costs two ``perf_counter`` calls, one wrapped ``send``, a dict lookup keyed
by ``(route, method, status // 100)``, one counter increment and one sketch update; the SLO engine's
per-minute data is read off the same sketch later (:meth:`HttpRecorder.collect`). See
``benchmarks/slo.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from time import perf_counter
from typing import Any

from buttress.slo.recorder import RECORDER, HttpRecorder
from buttress.slo.routes import UNMATCHED

__all__ = ["ROUTE_KEY", "DjangoSLOMiddleware", "SLOMiddleware", "SLOWSGIMiddleware", "instrument_flask"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Exclusions:
    """Exact paths and ``prefix*`` patterns, split once so the per-request test is one or two lookups."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        patterns = list(patterns)
        for p in patterns:
            if not isinstance(p, str) or not p.startswith("/"):
                raise ValueError(
                    f"excluded paths must start with '/', e.g. '/metrics' or '/health*'; got {p!r}"
                )
        self.exact = frozenset(p for p in patterns if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def __call__(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))


class SLOMiddleware:
    """Pure ASGI middleware recording request latency and counts per route template.

    The series are ``buttress_http_request_duration_seconds`` and ``buttress_http_requests``.

    Args:
        app: the ASGI application (a Starlette or FastAPI app, or anything that sets ``scope["route"]``).
        recorder: where series live (default: the process-wide :data:`~buttress.slo.recorder.RECORDER`).
        exclude: paths not to record: exact (``"/metrics"``) or prefixes (``"/health*"``).

    Add it with ``app.add_middleware(SLOMiddleware)`` or wrap: ``app = SLOMiddleware(app)``. Only HTTP
    requests are timed; websockets and lifespan pass straight through. The time covers the whole response,
    including a streamed body. An exception before the response started counts as a 500 and is re-raised.
    """

    __slots__ = ("app", "excluded", "recorder")

    def __init__(
        self,
        app: ASGIApp,
        recorder: HttpRecorder | None = None,
        *,
        exclude: Iterable[str] = ("/metrics",),
    ) -> None:
        self.app = app
        self.recorder = recorder if recorder is not None else RECORDER
        self.excluded = _Exclusions(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI call, recording it when it is an HTTP request."""
        if scope["type"] != "http" or self.excluded(scope["path"]):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        root = scope.get("root_path", "")
        start = perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = perf_counter() - start
            template = getattr(scope.get("route"), "path", None)
            if template is None:
                template = UNMATCHED
            else:
                mounted = scope.get("root_path", "")
                if mounted != root:
                    template = mounted[len(root) :] + template
            key = (template, scope["method"], status // 100)
            series = self.recorder.cache.get(key)
            if series is None:
                series = self.recorder.series(template, scope["method"], status)
            series.requests.value += 1
            series.latency_add(elapsed)


# --------------------------------------------------------------------------------------------------------
# WSGI
# --------------------------------------------------------------------------------------------------------

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


#: Where framework hooks leave the route template for :class:`SLOWSGIMiddleware` to read.
ROUTE_KEY = "buttress.route"


def _werkzeug_route(environ: dict[str, Any]) -> str:
    # Flask clears environ["werkzeug.request"] when its request context ends, before the WSGI call
    # returns, so instrument_flask() copies the rule into ROUTE_KEY in a teardown hook; plain werkzeug
    # apps leave their request object in place.
    route = environ.get(ROUTE_KEY)
    if route is not None:
        return str(route)
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    return UNMATCHED if rule is None else str(rule.rule)


class SLOWSGIMiddleware:
    """WSGI middleware recording the same series as :class:`SLOMiddleware`.

    Args:
        app: the WSGI application (``flask_app.wsgi_app``, or any werkzeug-based app).
        recorder: where series live (default: the process-wide recorder).
        exclude: paths not to record, as for :class:`SLOMiddleware`.
        route_of: reads the route template from the environ after the app ran; the default reads the
            werkzeug request's ``url_rule`` (Flask), ``<unmatched>`` when there is none.

    The time covers the application call; a streamed body that the server iterates later is not included
    (Flask buffers ordinary responses, so for them this is the whole handler). Use :func:`instrument_flask`
    for Flask.
    """

    __slots__ = ("app", "excluded", "recorder", "route_of")

    def __init__(
        self,
        app: WSGIApp,
        recorder: HttpRecorder | None = None,
        *,
        exclude: Iterable[str] = ("/metrics",),
        route_of: Callable[[dict[str, Any]], str] = _werkzeug_route,
    ) -> None:
        self.app = app
        self.recorder = recorder if recorder is not None else RECORDER
        self.excluded = _Exclusions(exclude)
        self.route_of = route_of

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve one WSGI call and record it."""
        if self.excluded(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        status = 500

        def start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            nonlocal status
            try:
                status = int(status_line[:3])
            except ValueError:
                status = 500
            return start_response(status_line, headers, exc_info)

        begin = perf_counter()
        try:
            return self.app(environ, start)
        finally:
            elapsed = perf_counter() - begin
            template = self.route_of(environ)
            method = environ.get("REQUEST_METHOD", "GET")
            key = (template, method, status // 100)
            series = self.recorder.cache.get(key)
            if series is None:
                series = self.recorder.series(template, method, status)
            series.requests.value += 1
            series.latency_add(elapsed)


def instrument_flask(
    app: Any, recorder: HttpRecorder | None = None, *, exclude: Iterable[str] = ("/metrics",)
) -> Any:
    """Wrap a Flask app's ``wsgi_app`` with :class:`SLOWSGIMiddleware`; returns the app.

    A ``teardown_request`` hook (which Flask runs for every request, failed ones included) copies
    ``request.url_rule.rule`` (``/events/<int:event_id>``) into the environ, where the middleware reads it
    as the route label once the app returns.
    """
    from flask import request

    def remember_route(exc: BaseException | None) -> None:
        rule = request.url_rule
        request.environ[ROUTE_KEY] = UNMATCHED if rule is None else rule.rule

    app.teardown_request(remember_route)
    app.wsgi_app = SLOWSGIMiddleware(app.wsgi_app, recorder, exclude=exclude)
    return app


# --------------------------------------------------------------------------------------------------------
# Django
# --------------------------------------------------------------------------------------------------------


class DjangoSLOMiddleware:
    """Django middleware (add ``"buttress.slo.middleware.DjangoSLOMiddleware"`` to ``MIDDLEWARE``).

    The route label is ``"/" + request.resolver_match.route`` (``/events/<int:pk>/``), ``<unmatched>`` when
    URL resolution failed. Put it first in ``MIDDLEWARE`` so it times the other middleware too. The recorder
    is the process-wide one unless ``settings.BUTTRESS_SLO_RECORDER`` names another object.
    """

    def __init__(self, get_response: Callable[[Any], Any], recorder: HttpRecorder | None = None) -> None:
        self.get_response = get_response
        if recorder is None:
            try:  # Django is optional; its settings are read only when Django is what calls us
                from django.conf import settings  # type: ignore[import-not-found,unused-ignore]

                recorder = getattr(settings, "BUTTRESS_SLO_RECORDER", None)
            except ImportError:
                recorder = None
        self.recorder = recorder if recorder is not None else RECORDER

    def __call__(self, request: Any) -> Any:
        """Serve one Django request and record it."""
        status = 500
        begin = perf_counter()
        try:
            response = self.get_response(request)
            status = int(getattr(response, "status_code", 500))
            return response
        finally:
            elapsed = perf_counter() - begin
            match = getattr(request, "resolver_match", None)
            route = getattr(match, "route", None)
            template = UNMATCHED if not route else (route if route.startswith("/") else "/" + route)
            self.recorder.series(template, str(request.method), status).record(elapsed)
