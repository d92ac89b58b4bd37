"""Fixtures for the cache tests: a fresh metrics registry per test, Redis URLs for both protocols."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from buttress.telemetry import Registry


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def clean_registry() -> Iterator[None]:
    from buttress.cache import registry as cache_registry

    cache_registry.reset()
    yield
    cache_registry.reset()
