"""The ``[demo]`` configuration section: the reference platform's own settings.

::

    [demo]
    replay_interval = "5s"   # how often each worker looks for dead letters to replay
    token_grace = "5m"       # how long a token the identity provider accepted is accepted again

The providers' resilience policies are not here: they are ``[resilience.policies.email|storage|identity]``,
built by :mod:`buttress.resilience` (see :mod:`buttress.demo.policies`).
"""

from __future__ import annotations

from buttress.config import Duration, Table

__all__ = ["SCHEMA"]

#: ``[demo]``.
SCHEMA = Table(
    fields={
        "replay_interval": Duration(
            default=5.0,
            positive=True,
            doc="seconds between checks for dead letters to replay (a breaker closing also starts one)",
        ),
        "token_grace": Duration(
            default=300.0,
            doc="how long a token the identity provider accepted is accepted again while it fails",
        ),
    }
)
