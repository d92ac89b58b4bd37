"""The built-in measures, in the order they run.

A new measure (mutation testing, test-first checks) joins the gate by being added here — or by being
passed to :func:`buttress.quality.gate.run_gate` directly — once its metrics are registered with
:func:`buttress.quality.gate.register_metric`.
"""

from __future__ import annotations

from buttress.quality.complexity import ComplexityMeasure
from buttress.quality.coverage import CoverageMeasure
from buttress.quality.duplication import DuplicationMeasure
from buttress.quality.gate import Measure
from buttress.quality.security import SecurityMeasure

__all__ = ["BUILTIN"]

#: Every built-in measure. Complexity and duplication share one read-and-parse pass over the files.
BUILTIN: tuple[Measure, ...] = (
    ComplexityMeasure(),
    DuplicationMeasure(),
    CoverageMeasure(),
    SecurityMeasure(),
)
