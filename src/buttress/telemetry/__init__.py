"""Telemetry: the metrics registry, the quantile sketch, the event stream and alert delivery.

Prometheus exposition lives in :mod:`buttress.telemetry.prometheus` (the ``prometheus`` extra) and is
not imported here, so the core stays standard-library only.
"""

from buttress.telemetry.events import (
    EVENTS,
    Alert,
    Event,
    EventStream,
    StateTransition,
    capture_events,
    get_event_stream,
)
from buttress.telemetry.notifier import DeliveryResult, Notifier
from buttress.telemetry.registry import (
    REGISTRY,
    Counter,
    Gauge,
    Latency,
    MetricFamily,
    Registry,
    get_registry,
)
from buttress.telemetry.sketch import Sketch

__all__ = [
    "EVENTS",
    "REGISTRY",
    "Alert",
    "Counter",
    "DeliveryResult",
    "Event",
    "EventStream",
    "Gauge",
    "Latency",
    "MetricFamily",
    "Notifier",
    "Registry",
    "Sketch",
    "StateTransition",
    "capture_events",
    "get_event_stream",
    "get_registry",
]
