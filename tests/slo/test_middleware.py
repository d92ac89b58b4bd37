"""The HTTP middleware on real Starlette, FastAPI and Flask apps, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from buttress.slo.middleware import SLOMiddleware, SLOWSGIMiddleware, instrument_flask
from buttress.slo.recorder import HttpRecorder
from buttress.telemetry.prometheus import exposition
from conftest import serve_asgi, serve_wsgi


def series(recorder: HttpRecorder) -> dict[tuple[str, str, str], int]:
    return {(s.route, s.method, s.status_class): s.requests.value for s in recorder._all}


def starlette_app(recorder: HttpRecorder):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Mount, Route

    async def event(request):
        return JSONResponse({"id": request.path_params["event_id"]})

    async def create(request):
        return JSONResponse({}, status_code=201)

    async def boom(request):
        raise RuntimeError("handler failed")

    async def user(request):
        return PlainTextResponse("u")

    async def stream(request):
        async def body():
            for chunk in (b"a", b"b", b"c"):
                yield chunk

        return StreamingResponse(body())

    async def ok(request):
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/api/v1/events/{event_id}", event),
            Route("/api/v1/events", create, methods=["POST"]),
            Route("/boom", boom),
            Route("/stream", stream),
            Route("/metrics", ok),
            Route("/health/live", ok),
            Mount("/admin", routes=[Route("/users/{uid}", user)]),
        ],
        middleware=[Middleware(SLOMiddleware, recorder=recorder, exclude=["/metrics", "/health*"])],
    )


def test_starlette_over_http(recorder, registry):
    app = starlette_app(recorder)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        for i in range(5):
            assert client.get(f"/api/v1/events/{i}").status_code == 200
        assert client.post("/api/v1/events").status_code == 201
        assert client.delete("/api/v1/events").status_code == 405  # partial match: route known
        assert client.get("/boom").status_code == 500
        assert client.get("/stream").text == "abc"
        for path in ("/wp-admin.php", "/.env", "/nope/1", "/nope/2"):
            assert client.get(path).status_code == 404
        assert client.get("/admin/users/7").text == "u"
        assert client.get("/admin/users/8").text == "u"
        client.get("/metrics")
        client.get("/health/live")
    assert series(recorder) == {
        ("/api/v1/events/{event_id}", "GET", "2xx"): 5,
        ("/api/v1/events", "POST", "2xx"): 1,
        ("/api/v1/events", "DELETE", "4xx"): 1,
        ("/boom", "GET", "5xx"): 1,
        ("/stream", "GET", "2xx"): 1,
        ("<unmatched>", "GET", "4xx"): 4,
        ("/admin/users/{uid}", "GET", "2xx"): 2,
    }
    # The per-minute sketches hold the same requests as the counters.
    collected = {(s.route, s.method, s.status_class): s.sketch.count for s in recorder.collect()}
    assert collected == series(recorder)
    assert recorder.collect() == []  # a new interval starts empty
    text = exposition(registry).decode()
    assert (
        'buttress_http_requests_total{method="GET",route="/api/v1/events/{event_id}",status_class="2xx"} 5.0'
        in text
    )
    assert (
        'buttress_http_request_duration_seconds_count{method="GET",route="/api/v1/events/{event_id}",'
        'status_class="2xx"} 5.0' in text
    )


def test_fastapi_over_http(recorder):
    from fastapi import FastAPI, HTTPException

    app = FastAPI()

    @app.get("/api/v1/speakers/{speaker_id}")
    async def speaker(speaker_id: int) -> dict[str, int]:
        if speaker_id == 0:
            raise HTTPException(404)
        return {"id": speaker_id}

    app.add_middleware(SLOMiddleware, recorder=recorder)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        for i in range(3):
            client.get(f"/api/v1/speakers/{i}")
        assert client.get("/api/v1/speakers/abc").status_code == 422
        client.get("/missing")
    assert series(recorder) == {
        ("/api/v1/speakers/{speaker_id}", "GET", "2xx"): 2,
        ("/api/v1/speakers/{speaker_id}", "GET", "4xx"): 2,
        ("<unmatched>", "GET", "4xx"): 1,
    }


async def test_exception_before_response_counts_as_500_and_propagates(recorder):
    async def app(scope, receive, send):
        raise ValueError("bad")

    wrapped = SLOMiddleware(app, recorder)
    scope = {"type": "http", "path": "/x", "method": "GET", "root_path": ""}
    with pytest.raises(ValueError, match="bad"):
        await wrapped(scope, None, None)
    assert series(recorder) == {("<unmatched>", "GET", "5xx"): 1}


async def test_non_http_scopes_pass_through(recorder):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    wrapped = SLOMiddleware(app, recorder)
    await wrapped({"type": "lifespan"}, None, None)
    await wrapped({"type": "websocket", "path": "/ws"}, None, None)
    assert seen == ["lifespan", "websocket"]
    assert len(recorder) == 0


def test_bad_exclusion_is_rejected(recorder):
    with pytest.raises(ValueError, match="must start with '/'"):
        SLOMiddleware(lambda *a: None, recorder, exclude=["metrics"])  # type: ignore[arg-type]


def test_label_explosion_is_bounded(registry):
    recorder = HttpRecorder(registry, max_routes=2)
    for i in range(10):
        recorder.record(f"/leaky/{i}", "GET", 200, 0.01)
    recorder.record("/x", "BREW", 200, 0.01)
    recorder.record("/x", "BREW2", 200, 0.01)
    assert series(recorder) == {
        ("/leaky/0", "GET", "2xx"): 1,
        ("/leaky/1", "GET", "2xx"): 1,
        ("<other>", "GET", "2xx"): 8,
        ("<other>", "OTHER", "2xx"): 2,
    }
    assert len(recorder.cache) == 2  # odd methods and overflowing routes are never cached
    with pytest.raises(ValueError, match="max_routes must be at least 1, got 0"):
        HttpRecorder(registry, max_routes=0)


def flask_app():
    from flask import Flask, abort

    app = Flask("events")

    @app.get("/events/<int:event_id>")
    def event(event_id: int):
        if event_id == 0:
            abort(404)
        return {"id": event_id}

    @app.post("/registrations")
    def register():
        return {"ok": True}, 201

    @app.get("/fail")
    def fail():
        raise RuntimeError("boom")

    @app.get("/metrics")
    def metrics():
        return "m"

    return app


def test_flask_over_http(recorder):
    app = instrument_flask(flask_app(), recorder)
    with serve_wsgi(app) as url, httpx.Client(base_url=url) as client:
        for i in range(4):
            client.get(f"/events/{i}")
        assert client.post("/registrations").status_code == 201
        assert client.get("/fail").status_code == 500
        assert client.get("/no/such/page").status_code == 404
        assert client.get("/metrics").text == "m"
    assert series(recorder) == {
        ("/events/<int:event_id>", "GET", "2xx"): 3,
        ("/events/<int:event_id>", "GET", "4xx"): 1,
        ("/registrations", "POST", "2xx"): 1,
        ("/fail", "GET", "5xx"): 1,
        ("<unmatched>", "GET", "4xx"): 1,
    }


def test_plain_wsgi_app_without_werkzeug_routes(recorder):
    def app(environ, start_response):
        start_response("204 No Content", [])
        return [b""]

    def route_of(environ):
        return "/custom/{id}" if environ["PATH_INFO"].startswith("/custom/") else "<unmatched>"

    wrapped = SLOWSGIMiddleware(app, recorder, route_of=route_of)
    with serve_wsgi(wrapped) as url, httpx.Client(base_url=url) as client:
        client.get("/custom/1")
        client.put("/custom/2")
    assert series(recorder) == {("/custom/{id}", "GET", "2xx"): 1, ("/custom/{id}", "PUT", "2xx"): 1}


def test_intervals_are_exact_differences_of_the_cumulative_sketch(registry):
    import numpy as np

    recorder = HttpRecorder(registry)
    rnd = np.random.default_rng(5)
    for _ in range(3):
        values = rnd.lognormal(-4, 1.5, 3000)
        for v in values:
            recorder.record("/a", "GET", 200, float(v))
        recorder.record("/a", "GET", 200, 0.0)  # zero durations count too
        (sample,) = recorder.collect()
        assert sample.sketch.count == len(values) + 1
        for q in (0.5, 0.9, 0.99):
            exact = float(np.quantile([*values, 0.0], q, method="lower"))
            assert abs(sample.sketch.quantile(q) - exact) <= 0.01 * exact
        assert sample.sketch.sum == pytest.approx(float(values.sum()))
    assert recorder.collect() == []
    cumulative = registry.get(
        "buttress_http_request_duration_seconds", {"route": "/a", "method": "GET", "status_class": "2xx"}
    )
    assert cumulative.sketch.count == 3 * 3001  # /metrics keeps everything


def werkzeug_app(environ, start_response):
    """A plain werkzeug app (no Flask) that routes with werkzeug and keeps the matched rule on its request."""
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import Map, Rule
    from werkzeug.wrappers import Request, Response

    request = Request(environ)  # registers itself as environ["werkzeug.request"]
    try:
        rule, args = Map([Rule("/talks/<int:talk_id>")]).bind_to_environ(environ).match(return_rule=True)
    except HTTPException as exc:
        return exc(environ, start_response)
    request.url_rule = rule
    return Response(f"talk {args['talk_id']}")(environ, start_response)


def test_plain_werkzeug_app_routes_are_read_from_its_request(recorder):
    with serve_wsgi(SLOWSGIMiddleware(werkzeug_app, recorder)) as url, httpx.Client(base_url=url) as client:
        assert client.get("/talks/7").text == "talk 7"
        assert client.get("/talks/8").status_code == 200
        assert client.get("/nope").status_code == 404
    assert series(recorder) == {("/talks/<int:talk_id>", "GET", "2xx"): 2, ("<unmatched>", "GET", "4xx"): 1}


def test_wsgi_app_failing_before_its_response_counts_as_500(recorder):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/garbled":
            start_response("2OO OK", [])  # a status line whose code is not a number
            return [b""]
        raise RuntimeError("handler failed")

    wrapped = SLOWSGIMiddleware(app, recorder, route_of=lambda environ: environ["PATH_INFO"])
    with serve_wsgi(wrapped) as url, httpx.Client(base_url=url) as client:
        assert client.get("/fails").status_code == 500
    # A server refuses such a status line before the client sees anything, so call the app as it would.
    statuses = []
    wrapped(
        {"PATH_INFO": "/garbled", "REQUEST_METHOD": "POST"},
        lambda status, headers, exc=None: statuses.append(status),
    )
    assert statuses == ["2OO OK"]
    assert series(recorder) == {("/fails", "GET", "5xx"): 1, ("/garbled", "POST", "5xx"): 1}
