"""Prometheus exposition of a buttress :class:`~buttress.telemetry.registry.Registry`, read at scrape time.

Nothing here runs on a hot path: instruments count into the registry with plain attribute updates, and
the collector walks :meth:`Registry.families` only when Prometheus scrapes. ``prometheus_client`` is an
optional dependency (``pip install 'buttress[prometheus]'``), imported when a collector is built, so the
rest of buttress never needs it.

What a scrape shows, per registry family ``name``:

========  =========================================================================================
counter   ``name_total`` — a Prometheus counter.
gauge     ``name`` — a Prometheus gauge; a gauge with ``fn`` is read by calling it now. A series
          whose ``fn`` raises is left out of this scrape (the gap is the signal) instead of failing
          the whole scrape.
latency   ``name_bucket{le=...}``, ``name_sum``, ``name_count`` — a Prometheus histogram with a fixed,
          configurable set of ``le`` bounds (default: 1-2-5 steps from 100 µs to 50 s, 18 bounds, plus
          ``+Inf``), so the series count stays bounded however wide the sketch is. Each ``le`` count is
          read from the sketch's buckets without interpolation: it is the exact number of samples below
          a bucket edge at most 2 % under the bound, never a sample above it (so a sample exactly at,
          or just under, a bound may be counted in the next one: the SLO-safe side)
          (:meth:`Sketch.cumulative_counts <buttress.telemetry.sketch.Sketch.cumulative_counts>`).
          ``histogram_quantile()`` over ``rate(name_bucket[5m])`` then gives windowed percentiles.

          ``name_quantile{quantile="0.5"|"0.95"|"0.99"|"0.999"}`` — a gauge family with the sketch's own
          quantiles (within 1 %), over everything recorded since the process started (or the series was
          cleared). Prometheus cannot merge these across instances; they are for a quick look at one
          process, and the histogram is what alerts and SLOs should use. NaN while a series is empty.
========  =========================================================================================

A histogram and a summary cannot share one metric name, which is why the quantiles are a separate
``_quantile`` gauge family rather than a summary.

Usage::

    from buttress.telemetry.prometheus import register

    register()  # the default buttress registry, on prometheus_client's default registry
    # ... then serve prometheus_client.make_asgi_app() or start_http_server(9464)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, cast

from buttress.telemetry.registry import Counter, Gauge, Latency, Registry, get_registry

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_QUANTILES",
    "ButtressCollector",
    "exposition",
    "make_collector",
    "register",
]

#: Histogram ``le`` bounds in seconds: 1-2-5 steps from 100 µs to 50 s.
DEFAULT_BOUNDS: Final[tuple[float, ...]] = tuple(
    round(m * 10.0**e, 6) for e in range(-4, 2) for m in (1.0, 2.0, 5.0)
)
#: Quantiles exported in the ``<name>_quantile`` gauge family.
DEFAULT_QUANTILES: Final[tuple[float, ...]] = (0.5, 0.95, 0.99, 0.999)

_INSTALL_HINT: Final = (
    "buttress.telemetry.prometheus needs the prometheus_client package; "
    "install it with: pip install 'buttress[prometheus]'"
)


def _prometheus_client() -> ModuleType:
    """Import prometheus_client on first use, with an install hint when it is missing."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return prometheus_client


class ButtressCollector:
    """A ``prometheus_client`` collector that reads a buttress registry each time it is scraped.

    Register it on a ``prometheus_client.CollectorRegistry`` (or use :func:`register`); it keeps no
    state of its own, so series created after registration appear on the next scrape.

    Args:
        registry: the buttress registry to expose; ``None`` means the process-wide default.
        bounds: histogram ``le`` bounds in the latency's unit, positive and finite; sorted for you.
        quantiles: the quantiles of the ``<name>_quantile`` gauge family, each from 0 to 1; empty to
            leave that family out.

    Raises:
        ImportError: ``prometheus_client`` is not installed (the message says how to install it).
        ValueError: a bound or quantile is out of range, or there are no bounds.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        bounds: Sequence[float] = DEFAULT_BOUNDS,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> None:
        _prometheus_client()
        from prometheus_client import utils

        # The same label formatting as prometheus_client's own histograms ("+Inf", "0.005", "1e+06"),
        # so le values match dashboards built for them. It is untyped upstream, hence the cast.
        go_float = cast(Callable[[float], str], utils.floatToGoString)

        clean = sorted(set(bounds))
        if not clean or not all(0.0 < b < math.inf for b in clean):
            raise ValueError(
                f"histogram bounds must be positive, finite numbers (at least one); got {bounds!r}"
            )
        if not all(0.0 <= q <= 1.0 for q in quantiles):
            raise ValueError(f"quantiles must be between 0 and 1; got {quantiles!r}")
        self._registry = registry
        self._bounds = [*clean, math.inf]
        # Label values are formatted once here, not per series per scrape.
        self._le = [go_float(b) for b in self._bounds]
        self._quantiles = list(quantiles)
        self._q_labels = [go_float(q) for q in quantiles]

    @property
    def registry(self) -> Registry:
        """The buttress registry read at each scrape."""
        return self._registry if self._registry is not None else get_registry()

    def collect(self) -> Iterator[Metric]:
        """Build the metric families from the registry as it is now (called by ``prometheus_client``).

        Yields:
            One ``prometheus_client`` metric family per registry counter or gauge family, two per
            latency family (the histogram and the quantile gauges).
        """
        from prometheus_client.metrics_core import Metric

        for family in self.registry.families():
            children = list(family.children)  # a snapshot: parts may add series while we read
            if family.kind == "counter":
                yield self._counter(Metric(family.name, family.help, "counter"), family.name, children)
            elif family.kind == "gauge":
                yield self._gauge(Metric(family.name, family.help, "gauge"), family.name, children)
            else:
                yield from self._latency(Metric, family.name, family.help, family.unit, children)

    @staticmethod
    def _counter(metric: Metric, name: str, children: Sequence[object]) -> Metric:
        for child in children:
            if isinstance(child, Counter):
                metric.add_sample(name + "_total", child.labels, float(child.value))
        return metric

    @staticmethod
    def _gauge(metric: Metric, name: str, children: Sequence[object]) -> Metric:
        for child in children:
            if not isinstance(child, Gauge):
                continue
            try:
                value = float(child.read())
            except Exception:
                # One broken gauge function must not take the whole scrape down.
                continue
            metric.add_sample(name, child.labels, value)
        return metric

    def _latency(
        self, metric_type: type[Metric], name: str, help: str, unit: str, children: Sequence[object]
    ) -> Iterator[Metric]:
        # prometheus_client appends the unit to a name that does not end with it; pass it only when
        # the name already carries it, so a series is never silently renamed.
        unit = unit if unit and name.endswith("_" + unit) else ""
        histogram = metric_type(name, help, "histogram", unit)
        quantiles = metric_type(
            name + "_quantile", f"{help} (quantiles since start, from the sketch)", "gauge"
        )
        for child in children:
            if not isinstance(child, Latency):
                continue
            sketch = child.sketch
            counts = sketch.cumulative_counts(self._bounds)
            total = sketch.sum
            for le, count in zip(self._le, counts, strict=True):
                histogram.add_sample(name + "_bucket", {**child.labels, "le": le}, float(count))
            histogram.add_sample(name + "_count", child.labels, float(counts[-1]))
            histogram.add_sample(name + "_sum", child.labels, float(total))
            if self._quantiles:
                for label, value in zip(self._q_labels, sketch.quantiles(self._quantiles), strict=True):
                    quantiles.add_sample(name + "_quantile", {**child.labels, "quantile": label}, value)
        yield histogram
        if self._quantiles:
            yield quantiles


def make_collector(
    registry: Registry | None = None,
    *,
    bounds: Sequence[float] = DEFAULT_BOUNDS,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> ButtressCollector:
    """Build a :class:`ButtressCollector` for ``registry`` without registering it anywhere.

    Args:
        registry: the buttress registry; ``None`` means the process-wide default.
        bounds: histogram ``le`` bounds (see :class:`ButtressCollector`).
        quantiles: quantiles of the ``_quantile`` gauges (see :class:`ButtressCollector`).

    Returns:
        The collector, ready for ``prometheus_registry.register(collector)``.
    """
    return ButtressCollector(registry, bounds=bounds, quantiles=quantiles)


def register(
    registry: Registry | None = None,
    prometheus_registry: Any = None,
    *,
    bounds: Sequence[float] = DEFAULT_BOUNDS,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> ButtressCollector:
    """Expose ``registry`` through ``prometheus_registry`` (both default to the process-wide ones).

    Args:
        registry: the buttress registry; ``None`` means the process-wide default.
        prometheus_registry: a ``prometheus_client.CollectorRegistry``; ``None`` means
            ``prometheus_client.REGISTRY``, which ``start_http_server`` and ``make_asgi_app`` serve.
        bounds: histogram ``le`` bounds (see :class:`ButtressCollector`).
        quantiles: quantiles of the ``_quantile`` gauges (see :class:`ButtressCollector`).

    Returns:
        The registered collector; pass it to ``prometheus_registry.unregister`` to undo.

    Raises:
        ImportError: ``prometheus_client`` is not installed.
        ValueError: from ``prometheus_client`` when a metric name is already exposed there.
    """
    client = _prometheus_client()
    collector = make_collector(registry, bounds=bounds, quantiles=quantiles)
    target = prometheus_registry if prometheus_registry is not None else client.REGISTRY
    target.register(collector)
    return collector


def exposition(
    registry: Registry | None = None,
    *,
    bounds: Sequence[float] = DEFAULT_BOUNDS,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> bytes:
    """The Prometheus text format (0.0.4) for ``registry`` alone, as a scrape would return it.

    Uses a private ``CollectorRegistry``, so nothing else registered in the process shows up and
    nothing stays registered afterwards. Handy for tests, debugging and a hand-rolled ``/metrics``.

    Args:
        registry: the buttress registry; ``None`` means the process-wide default.
        bounds: histogram ``le`` bounds (see :class:`ButtressCollector`).
        quantiles: quantiles of the ``_quantile`` gauges (see :class:`ButtressCollector`).

    Returns:
        The exposition text, UTF-8 encoded.
    """
    client = _prometheus_client()
    private = client.CollectorRegistry(auto_describe=False)
    private.register(make_collector(registry, bounds=bounds, quantiles=quantiles))
    text: bytes = client.generate_latest(private)
    return text
