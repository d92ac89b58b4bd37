"""Quality gates without a server: complexity, duplication, coverage of new code, security, history.

``buttress quality check [PATH] [--base REF] [--profile NAME] [--format …]`` measures and judges; the
same from Python::

    from buttress.quality import check

    result = check("src", base="main")
    result.exit_code            # 0 passed, 1 failed, 2 could not measure

Parts: :mod:`.gate` (measures, conditions, verdict), :mod:`.profiles` and :mod:`.schema` (named rule
sets in buttress.toml), :mod:`.complexity`, :mod:`.duplication`, :mod:`.coverage`, :mod:`.security`
(the built-in measures), :mod:`.history` and :mod:`.pytest_plugin` (what is recorded), :mod:`.trends`,
and :mod:`.report` (terminal, SARIF, JUnit, JSON, HTML).
"""

from __future__ import annotations

from buttress.quality.check import check
from buttress.quality.gate import (
    METRICS,
    Condition,
    ConditionResult,
    Context,
    GateResult,
    Measure,
    Measurement,
    Metric,
    register_metric,
    run_gate,
)
from buttress.quality.model import FileProblem, Finding
from buttress.quality.profiles import Profile, resolve_profile

__all__ = [
    "METRICS",
    "Condition",
    "ConditionResult",
    "Context",
    "FileProblem",
    "Finding",
    "GateResult",
    "Measure",
    "Measurement",
    "Metric",
    "Profile",
    "check",
    "register_metric",
    "resolve_profile",
    "run_gate",
]
