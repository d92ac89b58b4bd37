import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from buttress.clock import VirtualClock
from buttress.telemetry import Alert, EventStream, Notifier, Registry, StateTransition


class Hook:
    """A real HTTP server on a free port that records POSTed JSON and answers with scripted statuses."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        self.received = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                status = hook.statuses.pop(0) if hook.statuses else 200
                with hook.received:
                    hook.bodies.append(body)
                    hook.received.notify_all()
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def alert(status="firing"):
    return Alert(
        source="slo", name="public-pages", severity="page", status=status, summary="budget burning 14x"
    )


def test_send_posts_alert_json(hook):
    reg = Registry()
    notifier = Notifier([hook.url], registry=reg)
    (result,) = notifier.send(alert())
    assert result.ok
    assert result.status == 200
    assert result.attempts == 1
    (body,) = hook.bodies
    assert body["kind"] == "alert"
    assert body["severity"] == "page"
    assert body["status"] == "firing"
    assert reg.value("buttress_notifier_deliveries") == 1


def test_retries_server_errors_with_backoff_on_the_clock(hook):
    hook.statuses = [500, 503]
    clock = VirtualClock(auto_advance=True)
    notifier = Notifier([hook.url], attempts=3, backoff=1.0, clock=clock, registry=Registry())
    (result,) = notifier.send(alert())
    assert result.ok
    assert result.attempts == 3
    assert clock.monotonic() == 3.0  # slept 1 s then 2 s
    assert len(hook.bodies) == 3


def test_gives_up_on_client_error_without_retrying(hook):
    hook.statuses = [400]
    reg = Registry()
    notifier = Notifier([hook.url], attempts=5, clock=VirtualClock(auto_advance=True), registry=reg)
    (result,) = notifier.send(alert())
    assert not result.ok
    assert result.attempts == 1
    assert result.error == "HTTP 400"
    assert reg.value("buttress_notifier_failures") == 1


def test_unreachable_webhook_fails_after_attempts():
    clock = VirtualClock(auto_advance=True)
    notifier = Notifier(
        ["http://127.0.0.1:9/hook"], attempts=2, backoff=0.5, timeout=1, clock=clock, registry=Registry()
    )
    (result,) = notifier.send(alert())
    assert not result.ok
    assert result.attempts == 2
    assert result.status is None


def test_attach_delivers_alerts_only_in_background(hook):
    stream = EventStream()
    notifier = Notifier([hook.url], registry=Registry())
    notifier.attach(stream)
    stream.publish(StateTransition(source="circuitbreaker", name="e", from_state="closed", to_state="open"))
    stream.publish(alert("firing"))
    stream.publish(alert("resolved"))
    with hook.received:
        assert hook.received.wait_for(lambda: len(hook.bodies) == 2, 10)
    notifier.close()
    assert [b["status"] for b in hook.bodies] == ["firing", "resolved"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="attempts"):
        Notifier([], attempts=0)
    with pytest.raises(ValueError, match="timeout"):
        Notifier([], timeout=0)
