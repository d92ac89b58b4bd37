"""Service level objectives: per-endpoint latency and outcomes, error budgets, burn-rate alerts, reports.

The parts, in the order data flows through them:

* :class:`SLOMiddleware` (ASGI), :class:`SLOWSGIMiddleware` / :func:`instrument_flask` (WSGI) and
  :class:`DjangoSLOMiddleware` record each request into an :class:`HttpRecorder`, keyed by route template;
  :func:`instrument_engine` times SQLAlchemy statements; :func:`vitals_app` collects browser Web Vitals;
  :class:`Journeys` times multi-step user journeys.
* :class:`SLOSpec` describes an objective (``[[slo]]`` in ``buttress.toml``, or imported from OpenSLO and
  Sloth YAML with :func:`load_openslo` / :func:`load_sloth`).
* :class:`SLOMonitor` collects each minute into the :class:`HistoryStore` and the :class:`SLOEngine`, which
  computes budgets and burn rates and fires and resolves alerts.
* :func:`prometheus_rules` / :func:`grafana_dashboard` write the same SLOs for Prometheus and Grafana;
  :func:`build_report` writes SLA reports.

Third-party integrations (Starlette, SQLAlchemy, PyYAML) are imported only by the functions that need them.
"""

from buttress.slo.engine import SLOEngine, SLOStatus
from buttress.slo.journeys import Journeys
from buttress.slo.middleware import DjangoSLOMiddleware, SLOMiddleware, SLOWSGIMiddleware, instrument_flask
from buttress.slo.monitor import SLOMonitor
from buttress.slo.recorder import RECORDER, HttpRecorder
from buttress.slo.report import build_report
from buttress.slo.rules import grafana_dashboard, prometheus_rules
from buttress.slo.spec import AlertWindow, SLOSpec, from_config, load_file, load_openslo, load_sloth, to_toml
from buttress.slo.sql import instrument_engine
from buttress.slo.store import HistoryCorruptError, HistoryStore
from buttress.slo.vitals import vitals_app

__all__ = [
    "RECORDER",
    "AlertWindow",
    "DjangoSLOMiddleware",
    "HistoryCorruptError",
    "HistoryStore",
    "HttpRecorder",
    "Journeys",
    "SLOEngine",
    "SLOMiddleware",
    "SLOMonitor",
    "SLOSpec",
    "SLOStatus",
    "SLOWSGIMiddleware",
    "build_report",
    "from_config",
    "grafana_dashboard",
    "instrument_engine",
    "instrument_flask",
    "load_file",
    "load_openslo",
    "load_sloth",
    "prometheus_rules",
    "to_toml",
    "vitals_app",
]
