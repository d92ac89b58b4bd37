"""Quality measures on real code (SQLAlchemy and rich) beside radon, complexipy, lizard, symilar and jscpd.

Run from the bench venv (SQLAlchemy and rich are found with ``importlib.util.find_spec``); jscpd is an
npm package: ``npm install jscpd`` into a folder and point ``JSCPD`` at its ``node_modules/.bin/jscpd``
(default ``/tmp/jscpd/node_modules/.bin/jscpd``)::

    python benchmarks/quality.py [--quick] [--json FILE]

Cases (seconds unless the name says otherwise; each figure is the best of the rounds):

* ``complexity_<code>_s`` — every function's cyclomatic *and* cognitive complexity, files read and
  parsed (ours: one pass for both), beside ``radon cc`` (cyclomatic, in-process API), ``lizard``
  (cyclomatic, in-process API) and ``complexipy`` (cognitive, its Rust CLI);
* ``duplication_<code>_s`` — clone detection with 100 tokens / 10 lines, beside ``jscpd``
  (``--min-tokens 100 --min-lines 10``, Rust) and pylint's ``symilar`` (``--duplicates 10``);
* ``density_<code>_pct`` — duplication density, ours with exact tokens beside jscpd's default mode,
  and ``density_renamed_<code>_pct`` ours with names and literals normalised beside jscpd with
  ``--ignore-identifiers --ignore-literals`` (the two count duplicated lines differently: see
  docs/bench/quality.md);
* ``density_jscpd_definition_<code>_pct`` — our clone search run with jscpd's definitions (strings split
  into word tokens, density = summed clone lengths / lines) beside jscpd, to separate definition from engine;
* ``cyclomatic_differs_from_radon_<code>_pct`` — share of radon's functions whose cyclomatic complexity
  differs from ours (radon does not look inside ``assert``; we do), and
  ``cognitive_differs_from_complexipy_<code>_pct`` the same against complexipy's cognitive figures.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import Case, parse_args, report
from buttress.quality.analysis import AnalysisOptions, analyse_files
from buttress.quality.duplication import find_clones

JSCPD = os.environ.get("JSCPD", "/tmp/jscpd/node_modules/.bin/jscpd")
BIN = Path(sys.executable).parent


def source_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{package} is not installed in this environment (use the bench venv)")
    return Path(spec.origin).parent


def best_of(rounds: int, fn: Callable[[], object]) -> tuple[float, object]:
    best = float("inf")
    out: object = None
    for _ in range(rounds):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def ours_complexity(root: Path) -> list[object]:
    analyses = analyse_files(files_of(root), root, AnalysisOptions(complexity=True, duplication=False))
    return [f for a in analyses for f in a.functions]


def ours_duplication(root: Path, normalise: bool) -> float:
    options = AnalysisOptions(complexity=False, duplication=True, names=normalise, literals=normalise)
    analyses = [a for a in analyse_files(files_of(root), root, options) if a.windows is not None]
    result = find_clones(
        [a.windows for a in analyses if a.windows], {a.rel: a.physical_lines for a in analyses}
    )
    return result.density


_WORD = re.compile(r"\w+|[^\w\s]")


def jscpd_style_density(root: Path) -> float:
    """Our clone search with jscpd's definitions: strings split into word tokens, and the density as
    the sum of each clone's length (one copy) over all lines. Shows how much of the gap to jscpd is
    definition rather than engine."""
    from buttress.quality import duplication as dup

    windows = []
    total = lines_in_clones = 0
    for path in files_of(root):
        text = path.read_text(encoding="utf-8")
        codes: list[int] = []
        starts = array("I")
        ends = array("I")
        for kind, value, line, end in dup.tokens(text):
            if kind == dup.LITERAL and value[-1:] in "'\"":
                for m in _WORD.finditer(value):
                    at = line + value.count("\n", 0, m.start())
                    codes.append(zlib.crc32(m.group().encode()))
                    starts.append(at)
                    ends.append(at)
            else:
                codes.append(zlib.crc32(value.encode()))
                starts.append(line)
                ends.append(end)
        rel = path.relative_to(root).as_posix()
        windows.append(dup.TokenWindows(rel, dup._window_hashes(codes, 100), starts, ends))
        total += len(text.splitlines())
    result = dup.find_clones(windows, {w.rel: 0 for w in windows}, 100, 10)
    lines_in_clones = sum(c.lines for c in result.clones)
    return 100.0 * lines_in_clones / max(1, total)


def radon_cc(root: Path) -> dict[tuple[str, int], int]:
    from radon.complexity import cc_visit

    out = {}
    for path in files_of(root):
        rel = str(path.relative_to(root))
        try:
            blocks = cc_visit(path.read_text(encoding="utf-8"))
        except SyntaxError:
            continue
        for b in blocks:
            if b.letter in ("F", "M"):
                out[(rel, b.lineno)] = b.complexity
                for c in getattr(b, "closures", []):
                    out[(rel, c.lineno)] = c.complexity
    return out


def lizard_cc(root: Path) -> int:
    import lizard

    return sum(len(lizard.analyze_file(str(p)).function_list) for p in files_of(root))


def run_cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def complexipy(root: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:  # a fresh cache each time: no credit for a warm cache
        run_cli([str(BIN / "complexipy"), str(root), "-q", "--cache-dir", tmp])


def cognitive_differences(root: Path, analyses: list[Any]) -> float:
    """Percent of complexipy's functions whose cognitive complexity differs from ours (matched by name)."""
    ours: dict[tuple[str, str], set[int]] = {}
    for a in analyses:
        for f in a.functions:
            key = (a.rel, f.name.replace(".<locals>", "").replace(".", "::"))
            ours.setdefault(key, set()).add(f.cognitive)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cpx.json"
        run_cli(
            [
                str(BIN / "complexipy"),
                str(root),
                "-q",
                "--cache-dir",
                tmp,
                "--output-format",
                "json",
                "--output",
                str(out),
            ]
        )
        data = json.loads(out.read_text())
    matched = differ = 0
    for d in data:
        key = (Path(d["path"]).resolve().relative_to(root.resolve()).as_posix(), d["function_name"])
        if key in ours:
            matched += 1
            differ += d["complexity"] not in ours[key]
    return 100.0 * differ / max(1, matched)


def jscpd(root: Path, *extra: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run_cli(
            [
                JSCPD,
                "--min-tokens",
                "100",
                "--min-lines",
                "10",
                "--reporters",
                "json",
                "--output",
                tmp,
                "--silent",
                *extra,
                str(root),
            ]
        )
        data = json.loads((Path(tmp) / "jscpd-report.json").read_text())
    return float(data["statistics"]["formats"]["python"]["percentage"])


def symilar(root: Path) -> None:
    run_cli(
        [
            sys.executable,
            "-m",
            "pylint.checkers.symilar",
            "--duplicates=10",
            "--ignore-comments",
            "--ignore-docstrings",
            *map(str, files_of(root)),
        ]
    )


def main() -> None:
    args = parse_args("buttress quality measures beside radon, complexipy, lizard, symilar and jscpd")
    rounds = 1 if args.quick else 3
    codes = {"sqlalchemy": source_dir("sqlalchemy"), "rich": source_dir("rich")}
    have_jscpd = Path(JSCPD).exists()
    cases = []
    for name, root in codes.items():
        ours_t, functions = best_of(rounds, lambda root=root: ours_complexity(root))
        radon_t, radon_values = best_of(rounds, lambda root=root: radon_cc(root))
        lizard_t, _ = best_of(rounds, lambda root=root: lizard_cc(root))
        cpx_t, _ = best_of(rounds, lambda root=root: complexipy(root))
        cases.append(
            Case(
                f"complexity_{name}_s", ours_t, {"radon cc": radon_t, "lizard": lizard_t, "complexipy": cpx_t}
            )
        )
        analyses = analyse_files(files_of(root), root, AnalysisOptions(duplication=False))
        ours_cc = {(a.rel, f.line): f.cyclomatic for a in analyses for f in a.functions}
        assert isinstance(radon_values, dict)
        differ = sum(1 for k, v in radon_values.items() if ours_cc.get(k) != v)
        cases.append(
            Case(f"cyclomatic_differs_from_radon_{name}_pct", 100.0 * differ / max(1, len(radon_values)))
        )
        cases.append(
            Case(f"cognitive_differs_from_complexipy_{name}_pct", cognitive_differences(root, analyses))
        )
        del functions
        dup_t, density = best_of(rounds, lambda root=root: ours_duplication(root, True))
        peers = {}
        if have_jscpd:
            peers["jscpd"] = best_of(rounds, lambda root=root: jscpd(root))[0]
        if not args.quick or name == "rich":
            peers["symilar"] = best_of(1, lambda root=root: symilar(root))[0]
        cases.append(Case(f"duplication_{name}_s", dup_t, peers))
        exact = ours_duplication(root, False)
        assert isinstance(density, float)
        if have_jscpd:
            cases.append(Case(f"density_{name}_pct", exact, {"jscpd": jscpd(root)}))
            cases.append(
                Case(
                    f"density_jscpd_definition_{name}_pct", jscpd_style_density(root), {"jscpd": jscpd(root)}
                )
            )
            cases.append(
                Case(
                    f"density_renamed_{name}_pct",
                    density,
                    {"jscpd": jscpd(root, "--ignore-identifiers", "--ignore-literals")},
                )
            )
    report("quality", cases, args, unit="s")


if __name__ == "__main__":
    main()
