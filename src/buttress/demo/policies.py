"""The providers' resilience pipelines, built per platform from ``[resilience.policies.<name>]``.

The demo's configuration names one policy per provider — ``email``, ``storage``, ``identity`` — in the
``[resilience]`` section that :mod:`buttress.resilience` validates, and :func:`build_pipeline` builds each
with :func:`buttress.resilience.registry.build` on the platform's own clock, metrics registry and event
stream (tests run several platforms in one process, each with a fresh ``Registry``, an ``EventStream``
and a ``VirtualClock``), with the entry's ``http`` timeouts on ``pipeline.http``.

The entry's ``dead_letter`` is not built into the pipeline here: the platform builds the confirmation
emails' :class:`~buttress.resilience.DeadLetterQueue` itself, with the registration's idempotency key
(see :mod:`buttress.demo.wiring`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience.registry import NamedPipeline, build

if TYPE_CHECKING:
    from buttress.clock import Clock
    from buttress.config import Config
    from buttress.telemetry import EventStream, Registry

__all__ = ["PROVIDERS", "build_pipeline", "provider_entries"]

#: The providers whose calls run through a named pipeline, by policy name.
PROVIDERS = ("email", "storage", "identity")


def provider_entries(cfg: Config) -> dict[str, dict[str, Any]]:
    """The checked ``[resilience.policies.<provider>]`` entry of every provider.

    Raises:
        ConfigError: naming each provider whose entry is missing, with the table to add.
    """
    entries: dict[str, dict[str, Any]] = cfg.section("resilience")["policies"]
    missing = [name for name in PROVIDERS if name not in entries]
    if missing:
        raise ConfigError(
            [
                ConfigProblem(
                    f"resilience.policies.{name}",
                    f"the demo calls the {name} provider through this policy; add a "
                    f"[resilience.policies.{name}] table (the embedded buttress.demo.toml has one to copy)",
                    has_value=False,
                )
                for name in missing
            ],
            cfg.source,
        )
    return {name: entries[name] for name in PROVIDERS}


def build_pipeline(
    name: str, entry: dict[str, Any], *, clock: Clock, registry: Registry, events: EventStream
) -> NamedPipeline:
    """The pipeline of one checked ``[resilience.policies.<name>]`` entry, on this platform's telemetry.

    Args:
        name: the entry's name; labels every policy's metrics.
        entry: the checked entry (as ``cfg.section("resilience")["policies"][name]``).
        clock: the clock of every time-dependent policy.
        registry: where the policies count.
        events: where the breaker publishes its transitions.

    Raises:
        ConfigError: when ``order`` leaves out a configured policy.
    """
    # The platform owns the dead-letter queue (its store and idempotency key), so the entry's is left out.
    return build(name, {**entry, "dead_letter": None}, clock=clock, registry=registry, events=events)
