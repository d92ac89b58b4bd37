"""Line and branch coverage from coverage.py data, overall and on new code, in SonarQube's formula.

SonarQube combines lines and conditions into one figure::

    coverage = (CT + CF + LC) / (2 × B + EL)

where ``CT``/``CF`` are conditions evaluated true/false at least once, ``B`` the number of conditions,
``LC`` the covered lines and ``EL`` the executable lines. Python's coverage.py records *branch
outcomes* (arcs from a line with more than one way out): a two-way ``if`` has two outcomes, exactly
the ``2 × B`` of the formula, and each outcome taken is one of ``CT + CF``. So::

    coverage = (covered lines + branch outcomes taken) / (executable lines + branch outcomes)

Data collected without ``--branch`` gives line coverage only (and says so in the report).

**New code** is the lines changed against ``--base`` (:mod:`.gitdiff`): new-code coverage counts the
executable lines among them, and the branch outcomes leaving them. Like SonarQube, it is not judged when
fewer than ``min_new_lines`` (20) lines changed.

**Coverage drop**: every run is recorded per commit (:mod:`.history`); with ``--base``, the overall figure
is compared with the one recorded for the merge-base commit, and the files whose coverage fell are
listed with their uncovered lines.

With ``--run-tests`` the profile's ``coverage.command`` (``pytest -q`` by default) runs under
``coverage run --branch`` first; otherwise the data file must exist, and its absence is reported with the
command that produces it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buttress.errors import MeasureError

if TYPE_CHECKING:
    from buttress.quality.gate import Context, Measurement
    from buttress.quality.model import Finding

__all__ = ["CoverageMeasure", "FileCoverage", "load_coverage", "run_tests", "sonar_coverage"]


@dataclass(slots=True)
class FileCoverage:
    """One file's coverage facts.

    Attributes:
        statements: executable line numbers.
        executed: executable lines that ran.
        branches: every branch outcome as ``(from line, to line)``.
        taken: the outcomes that happened.
    """

    statements: set[int] = field(default_factory=set)
    executed: set[int] = field(default_factory=set)
    branches: set[tuple[int, int]] = field(default_factory=set)
    taken: set[tuple[int, int]] = field(default_factory=set)

    @property
    def missing(self) -> list[int]:
        """Executable lines that never ran, in order."""
        return sorted(self.statements - self.executed)

    def restricted(self, lines: set[int]) -> FileCoverage:
        """The same facts for ``lines`` only (outcomes leaving those lines)."""
        return FileCoverage(
            self.statements & lines,
            self.executed & lines,
            {b for b in self.branches if b[0] in lines},
            {b for b in self.taken if b[0] in lines},
        )


def sonar_coverage(files: list[FileCoverage]) -> tuple[float | None, float | None, float | None]:
    """``(coverage, line coverage, branch coverage)`` in percent; ``None`` where nothing is coverable."""
    lines = sum(len(f.statements) for f in files)
    covered = sum(len(f.executed & f.statements) for f in files)
    branches = sum(len(f.branches) for f in files)
    taken = sum(len(f.taken & f.branches) for f in files)
    total = lines + branches
    return (
        100.0 * (covered + taken) / total if total else None,
        100.0 * covered / lines if lines else None,
        100.0 * taken / branches if branches else None,
    )


def _config_file(root: Path) -> str | bool:
    for name in (".coveragerc", "setup.cfg", "tox.ini", "pyproject.toml"):
        if (root / name).is_file():
            return str(root / name)
    return False


def load_coverage(data_file: Path, root: Path, paths: list[Path]) -> tuple[dict[Path, FileCoverage], bool]:
    """Coverage facts for each of ``paths`` from ``data_file``, and whether branch data was recorded.

    Files the data never saw are reported as entirely uncovered (their statements come from parsing
    them), as SonarQube counts source nobody ran.

    Raises:
        MeasureError: the data file is missing or unreadable, with the command that produces it.
    """
    coverage = _require_coverage()
    if not data_file.is_file():
        raise MeasureError(
            f"no coverage data at {data_file}: run the tests under coverage first "
            f"(`coverage run --branch -m pytest`), or pass --run-tests"
        )
    cov = coverage.Coverage(data_file=str(data_file), config_file=_config_file(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "module never imported" and friends: absence is the data here
        try:
            cov.load()
            has_arcs = bool(cov.get_data().has_arcs())
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "coverage.json"
                with contextlib.redirect_stdout(io.StringIO()):
                    cov.json_report(morfs=[str(p) for p in paths], outfile=str(out), ignore_errors=True)
                report = json.loads(out.read_text(encoding="utf-8"))
        except coverage.exceptions.NoDataError:
            return {p: FileCoverage() for p in paths}, False
        except coverage.exceptions.CoverageException as exc:
            raise MeasureError(f"cannot read coverage data {data_file}: {exc}") from None
    facts: dict[Path, FileCoverage] = {}
    for name, entry in report.get("files", {}).items():
        path = Path(name) if os.path.isabs(name) else Path(os.getcwd(), name)
        executed = set(entry.get("executed_lines", []))
        missing = set(entry.get("missing_lines", []))
        taken = {tuple(b) for b in entry.get("executed_branches", [])}
        lost = {tuple(b) for b in entry.get("missing_branches", [])}
        facts[path.resolve()] = FileCoverage(executed | missing, executed, taken | lost, taken)
    return {p: facts.get(p.resolve(), FileCoverage()) for p in paths}, has_arcs


def run_tests(root: Path, command: tuple[str, ...], data_file: Path, timeout: float) -> None:
    """Run ``command`` under ``coverage run --branch`` in ``root``, writing ``data_file``.

    ``command`` is a module (``pytest``) or script (``tests/run.py``) and its arguments.

    Raises:
        MeasureError: the command could not start, timed out, or its tests failed.
    """
    _require_coverage()
    head, *rest = command
    target = [head] if head.endswith(".py") else ["-m", head]
    argv = [sys.executable, "-m", "coverage", "run", "--branch", f"--data-file={data_file}", *target, *rest]
    data_file.unlink(missing_ok=True)
    try:
        done = subprocess.run(argv, cwd=root, timeout=timeout, check=False, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"the test command {' '.join(command)!r} ran past {timeout:g}s") from None
    except OSError as exc:
        raise MeasureError(f"cannot run the test command {' '.join(command)!r}: {exc}") from None
    if done.returncode not in (0, 5):  # 5: pytest collected no tests, which is not a crash
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise MeasureError(
            f"the test command {' '.join(command)!r} failed with exit code {done.returncode}; coverage of a "
            f"failing suite is not a figure to gate on. Last lines:\n{tail}"
        )


def _require_coverage() -> Any:
    try:
        import coverage
    except ImportError:
        raise MeasureError(
            "coverage is not installed; the coverage measure needs the 'quality' extra: "
            "pip install 'buttress[quality]'"
        ) from None
    return coverage


def _ranges(lines: list[int]) -> str:
    """``[3, 4, 5, 9]`` → ``"3-5, 9"``."""
    out: list[str] = []
    start = prev = None
    for n in lines:
        if start is None:
            start = prev = n
        elif prev is not None and n == prev + 1:
            prev = n
        else:
            out.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ", ".join(out)


class CoverageMeasure:
    """The ``coverage`` measure: ``coverage``, ``line_coverage``, ``branch_coverage``, ``coverage_drop``."""

    name: str = "coverage"
    metrics: tuple[str, ...] = ("coverage", "line_coverage", "branch_coverage", "coverage_drop")

    def compute(self, context: Context) -> Measurement:
        """Read (or produce) coverage data and compute every figure."""
        from buttress.quality.gate import Measurement
        from buttress.quality.sources import relative

        settings = context.profile.coverage
        data_file = Path(settings.data_file)
        if not data_file.is_absolute():
            data_file = context.root / data_file
        if context.run_tests:
            run_tests(context.root, settings.command, data_file, settings.timeout)
        problems = {p.path for p in context.problems}
        paths = [p for p in context.files if relative(p, context.root) not in problems]
        facts, has_arcs = load_coverage(data_file, context.root, paths)
        by_rel = {relative(p, context.root): f for p, f in facts.items()}
        out = Measurement(self.name)
        out.notes.append(f"coverage data: {data_file}")
        if not has_arcs:
            out.notes.append("no branch data (collected without --branch): coverage is line coverage only")
        self._overall(out, by_rel, context)
        if context.new_lines is not None:
            self._new(out, by_rel, context)
        self._drop(out, by_rel, context)
        return out

    def _overall(self, out: Measurement, by_rel: dict[str, FileCoverage], context: Context) -> None:
        total, line, branch = sonar_coverage(list(by_rel.values()))
        for metric, value in (("coverage", total), ("line_coverage", line), ("branch_coverage", branch)):
            if value is not None:
                out.overall[metric] = round(value, 2)
            else:
                out.skipped[metric] = "nothing executable to cover"
        items = []
        per_file = {}
        for rel, f in sorted(by_rel.items()):
            pct = sonar_coverage([f])[0]
            per_file[rel] = {
                "coverage": None if pct is None else round(pct, 2),
                "statements": len(f.statements),
                "missing": f.missing,
                "branches": len(f.branches),
                "branches_taken": len(f.taken),
            }
            if f.missing or f.taken != f.branches:
                items.append((pct or 0.0, self._finding(rel, f, context, new=False)))
        items.sort(key=lambda vf: vf[0])
        out.items["coverage"] = out.items["line_coverage"] = out.items["branch_coverage"] = items
        out.details["per_file"] = per_file

    def _new(self, out: Measurement, by_rel: dict[str, FileCoverage], context: Context) -> None:
        new_lines = context.new_lines or {}
        restricted = {rel: f.restricted(new_lines[rel]) for rel, f in by_rel.items() if rel in new_lines}
        total, line, branch = sonar_coverage(list(restricted.values()))
        minimum = context.profile.coverage.min_new_lines
        count = context.new_line_count()
        small = (
            f"only {count} new lines (< {minimum}); like SonarQube, coverage on new code is not "
            "judged for small changes"
        )
        for metric, value in (("coverage", total), ("line_coverage", line), ("branch_coverage", branch)):
            if value is not None:
                out.new[metric] = round(value, 2)
            if count < minimum:
                out.skipped_new[metric] = small
            elif value is None:
                out.skipped_new[metric] = "no executable line among the new lines"
        items = [
            (sonar_coverage([f])[0] or 0.0, self._finding(rel, f, context, new=True))
            for rel, f in sorted(restricted.items())
            if f.missing or f.taken != f.branches
        ]
        items.sort(key=lambda vf: vf[0])
        out.new_items["coverage"] = out.new_items["line_coverage"] = out.new_items["branch_coverage"] = items
        out.details["new_uncovered"] = {rel: f.missing for rel, f in restricted.items() if f.missing}

    def _drop(self, out: Measurement, by_rel: dict[str, FileCoverage], context: Context) -> None:
        if context.base is None:
            out.skipped["coverage_drop"] = "no --base given, so there is no recorded figure to compare with"
            return
        current = out.overall.get("coverage")
        record = None
        if context.history is not None and context.base_commit is not None:
            record = context.history.run_for_commit(context.base_commit, context.target_key)
        if record is None or current is None or "coverage" not in record.overall:
            out.skipped["coverage_drop"] = (
                f"no recorded coverage for the base commit {str(context.base_commit)[:12]}; run "
                "`buttress quality check` on it (CI on the main branch does) to record one"
            )
            return
        drop = round(record.overall["coverage"] - current, 2)
        out.overall["coverage_drop"] = max(drop, 0.0)
        out.notes.append(
            f"base {str(context.base_commit)[:12]} recorded coverage {record.overall['coverage']:.2f}%"
        )
        items = []
        base_files = record.files
        for rel, f in sorted(by_rel.items()):
            before = (base_files.get(rel) or {}).get("coverage")
            now = sonar_coverage([f])[0]
            if before is not None and now is not None and now < before - 0.005:
                finding = self._finding(rel, f, context, new=False)
                msg = f"coverage fell from {before:.2f}% to {now:.2f}%; uncovered lines: {_ranges(f.missing)}"
                items.append((before - now, _with_message(finding, msg, "coverage.drop")))
        items.sort(key=lambda vf: -vf[0])
        out.items["coverage_drop"] = items

    @staticmethod
    def _finding(rel: str, f: FileCoverage, context: Context, *, new: bool) -> Finding:
        from buttress.quality.model import Finding

        missing = f.missing
        partial = sorted({a for a, _ in f.branches - f.taken})
        lines = context.lines(rel)
        first = (missing or partial or [1])[0]
        last = (missing or partial or [1])[-1]
        where = "new code: " if new else ""
        parts = []
        if missing:
            parts.append(f"lines {_ranges(missing)} never ran")
        if partial:
            parts.append(f"branches at {_ranges(partial)} only partly taken")
        content = "\n".join(" ".join(lines[n - 1].split()) for n in missing if 0 < n <= len(lines))
        return Finding(
            "coverage.new" if new else "coverage.uncovered",
            rel,
            first,
            last,
            where + "; ".join(parts),
            "warning",
            content or rel,
            new,
            {"missing": missing, "partial": partial, "coverage": sonar_coverage([f])[0]},
        )


def _with_message(finding: Finding, message: str, rule: str) -> Finding:
    from dataclasses import replace

    return replace(finding, message=message, rule=rule)
