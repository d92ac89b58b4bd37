"""The gate as JUnit XML: one test case per condition, so any CI shows the gate like a test suite.

A failed condition is a ``<failure>`` listing its offenders, an unmeasured one an ``<error>``, a skipped
one ``<skipped>``; a warning condition that does not hold passes with its message in ``<system-out>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from buttress.quality.gate import GateResult

__all__ = ["render"]


def render(result: GateResult) -> str:
    """The JUnit XML document (``testsuites`` with one ``testsuite``)."""
    results = result.ordered()
    counts = {s: sum(1 for r in results if r.status == s) for s in ("failed", "unmeasured", "skipped")}
    suites = ET.Element("testsuites", name="buttress quality gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"quality gate ({result.profile})",
        tests=str(len(results)),
        failures=str(counts["failed"]),
        errors=str(counts["unmeasured"]),
        skipped=str(counts["skipped"]),
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=f"quality.{r.condition.scope}", name=r.condition.text, time="0"
        )
        detail = "\n".join(f"{f.path}:{f.line}: {f.message}" for f in r.offenders[:200])
        if r.status == "failed":
            node = ET.SubElement(case, "failure", message=r.message, type=r.condition.metric)
            node.text = detail
        elif r.status == "unmeasured":
            node = ET.SubElement(case, "error", message=r.message, type="unmeasured")
            node.text = r.message
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = r.message + ("\n" + detail if detail else "")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
