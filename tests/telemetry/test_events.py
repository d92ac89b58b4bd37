import asyncio
import threading

from buttress.telemetry import Alert, EventStream, StateTransition, capture_events


def transition(to: str) -> StateTransition:
    return StateTransition(source="circuitbreaker", name="email", from_state="closed", to_state=to)


def test_publish_subscribe_filter_and_unsubscribe():
    stream = EventStream()
    everything, alerts = [], []
    stop = stream.subscribe(everything.append)
    stream.subscribe(alerts.append, Alert)
    stream.publish(transition("open"))
    alert = Alert(source="slo", name="p", severity="page", status="firing", summary="burning")
    stream.publish(alert)
    stop()
    stream.publish(transition("half_open"))
    assert [e.kind for e in everything] == ["state_transition", "alert"]
    assert alerts == [alert]
    assert len(stream.recent()) == 3
    assert stream.recent(1)[0].to_state == "half_open"


def test_broken_subscriber_does_not_break_publisher(caplog):
    stream = EventStream()
    got = []

    def boom(event):
        raise RuntimeError("consumer bug")

    stream.subscribe(boom)
    stream.subscribe(got.append)
    stream.publish(transition("open"))
    assert len(got) == 1
    assert "consumer bug" in caplog.text


def test_to_json_and_capture():
    stream = EventStream()
    with capture_events(stream) as seen:
        stream.publish(transition("open"))
    stream.publish(transition("closed"))
    assert len(seen) == 1
    data = seen[0].to_json()
    assert data["kind"] == "state_transition"
    assert data["to_state"] == "open"
    assert data["name"] == "email"


async def test_listen_receives_events_published_from_threads():
    stream = EventStream()
    received = []

    async def consume():
        async for event in stream.listen(StateTransition):
            received.append(event.to_state)
            if len(received) == 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # let the consumer subscribe
    threads = [threading.Thread(target=stream.publish, args=(transition(s),)) for s in ("a", "b", "c")]
    for t in threads:
        t.start()
        t.join()
    await asyncio.wait_for(task, 10)
    assert received == ["a", "b", "c"]
