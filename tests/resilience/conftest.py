"""Fixtures for the resilience tests: isolated metrics registries and event streams."""

from __future__ import annotations

import pytest

from buttress.telemetry import EventStream, Registry


@pytest.fixture
def registry() -> Registry:
    """A fresh metrics registry, so counts start at zero."""
    return Registry()


@pytest.fixture
def events() -> EventStream:
    """A private event stream, so tests see only their own events."""
    return EventStream()
