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
* ``duplication_jscpd_definition_<code>_s`` — the same with the profile option
  ``duplication.definition = "jscpd"``: files read and parsed (as in a gate run), then jscpd's tokens,
  clone search and counting (:func:`buttress.quality.jscpd.jscpd_duplication`), beside jscpd;
* ``density_jscpd_definition_<code>_pct`` — that mode's density beside jscpd's, and
  ``clones_matching_jscpd_<code>_pct`` the share of jscpd's clones we report with the same files, lines
  and token count (the script also prints identical / only-jscpd / only-ours counts);
* ``cyclomatic_differs_from_radon_<code>_pct`` — share of radon's functions whose cyclomatic complexity
  differs from ours (radon does not look inside ``assert``; we do), and
  ``cognitive_differs_from_complexipy_<code>_pct`` the same against complexipy's cognitive figures.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import Case, parse_args, report
from buttress.quality.analysis import AnalysisOptions, analyse_files
from buttress.quality.duplication import DuplicationResult, find_clones
from buttress.quality.jscpd import jscpd_duplication

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


def ours_jscpd_definition(root: Path) -> DuplicationResult:
    """The product's ``duplication.definition = "jscpd"``: the files that parse, measured jscpd's way."""
    options = AnalysisOptions(complexity=False, duplication=False)
    rels = [a.rel for a in analyse_files(files_of(root), root, options) if a.problem is None]
    return jscpd_duplication(root, rels, 100, 10)


def clone_agreement(ours: DuplicationResult, report: dict[str, Any]) -> tuple[int, int, int]:
    """Clones reported alike by both (files, first and last lines, tokens), only by jscpd, only by us."""
    theirs = {
        (
            d["firstFile"]["name"],
            d["firstFile"]["start"],
            d["firstFile"]["end"],
            d["secondFile"]["name"],
            d["secondFile"]["start"],
            d["secondFile"]["end"],
            d["tokens"],
        )
        for d in report["duplicates"]
        if d["format"] == "python"
    }
    mine = {
        (c.original_path, c.original_line, c.original_end_line, c.path, c.line, c.end_line, c.tokens)
        for c in ours.clones
    }
    return len(theirs & mine), len(theirs - mine), len(mine - theirs)


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
    return float(jscpd_report(root, *extra)["statistics"]["formats"]["python"]["percentage"])


def jscpd_report(root: Path, *extra: str) -> dict[str, Any]:
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
        data: dict[str, Any] = json.loads((Path(tmp) / "jscpd-report.json").read_text())
    return data


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


def duplication_cases(name: str, root: Path, rounds: int, quick: bool, have_jscpd: bool) -> list[Case]:
    """Clone detection with Sonar's and jscpd's definitions, timed and compared with jscpd."""
    dup_t, density = best_of(rounds, lambda: ours_duplication(root, True))
    jscpd_t, jscpd_rep = best_of(rounds, lambda: jscpd_report(root)) if have_jscpd else (0.0, None)
    peers = {"jscpd": jscpd_t} if have_jscpd else {}
    if not quick or name == "rich":
        peers["symilar"] = best_of(1, lambda: symilar(root))[0]
    cases = [Case(f"duplication_{name}_s", dup_t, peers)]
    js_t, js_result = best_of(rounds, lambda: ours_jscpd_definition(root))
    assert isinstance(js_result, DuplicationResult)
    cases.append(
        Case(f"duplication_jscpd_definition_{name}_s", js_t, {"jscpd": jscpd_t} if have_jscpd else {})
    )
    if not isinstance(jscpd_rep, dict):
        return cases
    theirs = float(jscpd_rep["statistics"]["formats"]["python"]["percentage"])
    same, only_jscpd, only_ours = clone_agreement(js_result, jscpd_rep)
    print(
        f"{name}: jscpd definition {js_result.density:.3f} % vs jscpd {theirs:.3f} % "
        f"({js_result.density - theirs:+.3f} points); clones identical {same}, only jscpd {only_jscpd}, "
        f"only ours {only_ours}"
    )
    assert isinstance(density, float)
    cases += [
        Case(f"density_{name}_pct", ours_duplication(root, False), {"jscpd": theirs}),
        Case(f"density_jscpd_definition_{name}_pct", js_result.density, {"jscpd": theirs}),
        Case(
            f"clones_matching_jscpd_{name}_pct",
            100.0 * same / max(1, same + only_jscpd),
            higher_is_better=True,
        ),
        Case(
            f"density_renamed_{name}_pct",
            density,
            {"jscpd": jscpd(root, "--ignore-identifiers", "--ignore-literals")},
        ),
    ]
    return cases


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
        cases.extend(duplication_cases(name, root, rounds, args.quick, have_jscpd))
    report("quality", cases, args, unit="s")


if __name__ == "__main__":
    main()
