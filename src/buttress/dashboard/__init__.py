"""The live dashboard: per-endpoint latency and throughput, SLOs, caches, breakers and dead letters.

::

    from buttress.dashboard import create_dashboard
    app.mount("/_buttress", create_dashboard())

The page updates over server-sent events and draws its charts with uPlot, which ships inside the wheel
(``static/``, MIT licence in ``static/LICENSE.uPlot.txt``): no CDN, works offline. Numbers come from
this process's telemetry registry, or from the merged snapshots of several worker processes
(:class:`~buttress.dashboard.snapshot.DirectorySource`).
"""

from buttress.dashboard.app import Control, create_dashboard
from buttress.dashboard.snapshot import DirectorySource, LocalSource, SnapshotWriter, collect, merge
from buttress.dashboard.view import LiveView

__all__ = [
    "Control",
    "DirectorySource",
    "LiveView",
    "LocalSource",
    "SnapshotWriter",
    "collect",
    "create_dashboard",
    "merge",
]
