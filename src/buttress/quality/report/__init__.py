"""Reports of a gate run: terminal (rich), SARIF 2.1.0, JUnit XML, JSON and self-contained HTML.

Each module exposes ``render(result) -> str`` (the terminal one prints to a rich console instead).
"""

from __future__ import annotations

__all__ = ["FORMATS"]

#: Report format name -> module under ``buttress.quality.report``.
FORMATS = {
    "terminal": "buttress.quality.report.terminal",
    "json": "buttress.quality.report.json",
    "sarif": "buttress.quality.report.sarif",
    "junit": "buttress.quality.report.junit",
    "html": "buttress.quality.report.html",
}
