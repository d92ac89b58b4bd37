"""The plain records every measure and report shares: findings, per-file problems, locations.

A :class:`Finding` is one thing a report points at (a too-complex function, a duplicated block, a
security issue, uncovered new lines). It carries the *content* of the flagged region, normalised, so a
SARIF fingerprint can follow the code rather than its line numbers (see :mod:`.report.sarif`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FileProblem", "Finding", "Level"]

#: How loudly a finding is reported; the names are SARIF's ``result.level`` values.
Level = Literal["error", "warning", "note"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One flagged region of one file.

    Attributes:
        rule: a stable rule id such as ``"complexity.cognitive"``, ``"duplication.block"`` or
            ``"security.B602"``; reports group by it.
        path: the file, relative to the project root, with ``/`` separators.
        line: first line of the region (1-based).
        end_line: last line of the region.
        message: a sentence a reader can act on.
        level: ``"error"`` when the finding fails a gate condition, else ``"warning"`` or ``"note"``.
        content: the normalised text of the region, used for stable fingerprints.
        new: whether the region touches lines changed against ``--base``.
        properties: extra figures for machine-readable reports (e.g. ``{"cognitive": 21}``).
    """

    rule: str
    path: str
    line: int
    end_line: int
    message: str
    level: Level = "warning"
    content: str = ""
    new: bool = False
    properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file that could not be measured (unreadable, undecodable, or not valid Python).

    Such files are reported one by one and left out of every figure; they never stop the run.
    """

    path: str
    message: str
    line: int = 0
