"""DjangoSLOMiddleware on a real Django project served over HTTP."""

from __future__ import annotations

import httpx

from buttress.slo.middleware import DjangoSLOMiddleware
from conftest import serve_wsgi


def _configure(recorder) -> None:
    from django.conf import settings

    if settings.configured:
        settings.BUTTRESS_SLO_RECORDER = recorder
        return
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="test-only",
        MIDDLEWARE=["buttress.slo.middleware.DjangoSLOMiddleware"],
        BUTTRESS_SLO_RECORDER=recorder,
        USE_TZ=True,
    )
    import django

    django.setup()


def event(request, pk: int):
    from django.http import JsonResponse

    return JsonResponse({"id": pk}, status=200 if pk < 3 else 404)


def fail(request):
    raise RuntimeError("handler bug")


urlpatterns: list = []


def _urls() -> None:
    from django.urls import path

    urlpatterns[:] = [path("events/<int:pk>/", event), path("fail/", fail)]


def test_django_over_http(recorder):
    _configure(recorder)
    _urls()
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    with serve_wsgi(app) as url, httpx.Client(base_url=url) as client:
        for i in range(4):
            client.get(f"/events/{i}/")
        assert client.get("/fail/").status_code == 500
        assert client.get("/nowhere/").status_code == 404
    got = {
        (c.labels["route"], c.labels["method"], c.labels["status_class"]): c.value
        for f in recorder.registry.families()
        if f.name == "buttress_http_requests"
        for c in f.children
    }
    assert got == {
        ("/events/<int:pk>/", "GET", "2xx"): 3,
        ("/events/<int:pk>/", "GET", "4xx"): 1,
        ("/fail/", "GET", "5xx"): 1,
        ("<unmatched>", "GET", "4xx"): 1,
    }


def test_recorder_defaults_to_settings_or_process_wide(recorder):
    _configure(recorder)
    assert DjangoSLOMiddleware(lambda r: r).recorder is recorder
    assert DjangoSLOMiddleware(lambda r: r, recorder).recorder is recorder
