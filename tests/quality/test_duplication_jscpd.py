"""duplication.definition = "jscpd": jscpd 5.3.3's tokens, clones and density, on crafted files.

Every expected figure here (token counts, clone boundaries and token lengths, line totals, densities) was
read from the real jscpd 5.3.3 binary's JSON report on the same files (``jscpd --min-tokens N --min-lines
M --reporters json``); the tests themselves need neither node nor jscpd.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buttress.config import loads
from buttress.errors import ConfigError
from buttress.quality import Context, resolve_profile
from buttress.quality.duplication import DuplicationMeasure
from buttress.quality.jscpd import find_clones_jscpd, jscpd_duplication, jscpd_tokens, scan_jscpd

PROSE = """Return the rows of the report, grouped by owner and sorted by date.
    The caller's filters are applied first: an empty filter keeps every row,
    and a filter naming an unknown column raises ``KeyError`` at once.
    Rows that share an owner are merged when their dates are equal; the
    merged row keeps the larger amount and the earlier reference (# kept).
    Dates before 1970 are rejected, as are amounts above 10.5e6, because
    the upstream ledger cannot hold them; don't rely on silent truncation.
    See the module notes for the rounding rules that apply to the totals.
    Totals are computed per owner and then per currency, so a report that
    mixes currencies shows one line per pair; the grand total is left out
    because adding amounts in different currencies would mean nothing.
    Pass ``strict=True`` to refuse rows whose currency is not declared."""

CODE = """    rows = [r for r in source if all(r.get(k) == v for k, v in filters.items())]
    merged = {}
    for row in rows:
        key = (row["owner"], row["date"])
        if key in merged:
            best = merged[key]
            best["amount"] = max(best["amount"], row["amount"])
            best["ref"] = min(best["ref"], row["ref"])
        else:
            merged[key] = dict(row)
    return sorted(merged.values(), key=lambda r: (r["owner"], r["date"]))
"""

#: A docstring copied into a method: one string token for Sonar, 146 word tokens for jscpd.
DOCSTRING_PROJECT = {
    "a.py": '"""Reports."""\n\n\ndef report(source, filters):\n    """' + PROSE + '\n    """\n' + CODE,
    "b.py": "import ledger\n\n\nclass Ledger:\n    def rows(self, source, filters):\n"
    '        """' + PROSE.replace("\n    ", "\n        ") + '\n        """\n'
    "        return ledger.fetch(source, filters)\n",
    "c.py": "VERSION = (1, 2, 3)\n",  # one line: too short for jscpd, so it counts 0 lines
}

TRICKY = """x = rb"\\"q" + f'{a!r:>{w}}' + \"\"\"multi
"line' \\" \"\"\" + ""
y = (1 +
     2) \\
    + 0x1F + 1_000.5e-3j + .5
z = \"\"\"a
\"\"\"  # comment with 'quote
if a:
\tpass
s = 'tail\\
words don't stop # inside a string
    __init__ x²y Ωmega ٣
"""


def write(root: Path, files: dict[str, str]) -> list[str]:
    for rel, text in files.items():
        (root / rel).write_bytes(text.encode("utf-8"))
    return sorted(files)


def clones(result):
    """Clones as jscpd's JSON lists them: first file, start, end, second file, start, end, tokens."""
    return [
        (c.original_path, c.original_line, c.original_end_line, c.path, c.line, c.end_line, c.tokens)
        for c in result.clones
    ]


def test_tokens_are_jscpds_line_tokens():
    found = jscpd_tokens(TRICKY)
    assert len(found) == 57  # jscpd: 57 tokens on 12 lines
    assert found[-1] == ("٣", 12)
    values = [v for v, _ in found]
    # A triple quote is an empty string and a string that runs to its closing quote or the line's end.
    assert values[8:14] == ['""', '"multi', '"line\' \\" "', '""', "+", '""']
    # Prefixes are words; a number is digits and dots; a comment inside a string is string.
    assert values[2:4] == ["rb", '"\\"q"']
    assert values[23:37] == ["0", "x1F", "+", "1", "_000", ".", "5", "e", "-", "3", "j", "+", ".", "5"]
    assert ("'t stop # inside a string", 11) in found
    assert ("\"  # comment with 'quote", 7) in found
    assert ("\\", 4) in found  # a line continuation is a character like any other


def test_docstring_prose_copied_into_a_method_is_a_clone_at_the_defaults(tmp_path):
    rels = write(tmp_path, DOCSTRING_PROJECT)
    result = jscpd_duplication(tmp_path, rels, 100, 10)
    # jscpd: one clone of 146 tokens; 14 of 47 lines (c.py is left out) = 29.787 %.
    assert clones(result) == [("a.py", 4, 17, "b.py", 5, 18, 146)]
    assert result.physical_lines == {"a.py": 28, "b.py": 19, "c.py": 0}
    assert (result.duplicated_lines, result.total_lines) == (14, 47)
    assert result.density == pytest.approx(29.78723404255319)
    assert result.duplicated["b.py"] == set(range(5, 19))


def test_the_measure_follows_the_profile_and_sonar_stays_the_default(tmp_path):
    write(tmp_path, {**DOCSTRING_PROJECT, "gen_table.py": "TABLE = (1, 2, 3)\n"})
    default = resolve_profile("default")
    assert default.duplication.definition == "sonar"
    assert resolve_profile("strict").duplication.definition == "sonar"
    sonar = DuplicationMeasure().compute(Context(tmp_path, tmp_path, default))
    assert sonar.overall["duplicated_blocks"] == 0  # one string token per docstring: no clone
    cfg = loads(
        '[quality.profiles.cmp.duplication]\ndefinition = "jscpd"\nnormalize = []\nexclude = ["gen_*.py"]\n'
    )
    profile = resolve_profile("cmp", cfg.section("quality")["profiles"])
    out = DuplicationMeasure().compute(Context(tmp_path, tmp_path, profile))
    assert out.overall == {"duplication": 29.7872, "duplicated_lines": 14.0, "duplicated_blocks": 1.0}
    assert out.details["per_file"]["c.py"] == {"lines": 0, "duplicated": 0}
    assert any("jscpd 5.3.3's definition" in n and "1 file(s) too short" in n for n in out.notes)
    assert "1 file(s) left out of duplication by duplication.exclude" in out.notes
    assert "gen_table.py" not in out.details["per_file"]
    assert [(c["original_path"], c["line"], c["tokens"]) for c in out.details["clones"]] == [("a.py", 5, 146)]


def test_a_clone_grows_only_along_its_first_copy(tmp_path):
    p = "".join(f"total_{i} = compute(items[{i}], rate={i}) + offset\n" for i in range(6))
    q = "".join(f"print('done', {i}, total_{i})\n" for i in range(6))
    r = "".join(f"log.info('saved %s', total_{i}, extra=True)\n" for i in range(6))
    rels = write(tmp_path, {"x.py": p + q, "y.py": p + r, "z.py": p + r})
    result = jscpd_duplication(tmp_path, rels, 30, 3)
    # z.py's first windows appeared first in x.py, so its clone follows x.py and stops where x.py
    # goes on differently; the rest of z.py is a second clone, of y.py, from the window that first
    # appeared there (jscpd: 20 of 36 lines, 55.56 %).
    assert clones(result) == [
        ("x.py", 1, 6, "y.py", 1, 6, 90),
        ("x.py", 1, 6, "z.py", 1, 6, 90),
        ("y.py", 5, 12, "z.py", 5, 12, 101),
    ]
    assert result.density == pytest.approx(55.55555555555556)


def test_the_second_pass_adds_a_run_of_first_and_second_places(tmp_path):
    blocks = {c: "".join(f"{c}_{i} = fetch({c!r}, {i}) or default_{c}\n" for i in range(3)) for c in "ABCD"}
    files = {"m0.py": "DDBA", "m1.py": "DDBC"}
    rels = write(tmp_path, {rel: "".join(blocks[c] for c in seq) for rel, seq in files.items()})
    result = jscpd_duplication(tmp_path, rels, 20, 2)
    # The last clone comes from the second pass; a run that grew ends one token past its last window,
    # on line 10 (jscpd: 18 of 24 lines, 75 %).
    assert clones(result) == [
        ("m0.py", 1, 3, "m0.py", 4, 6, 30),
        ("m0.py", 1, 9, "m1.py", 1, 9, 90),
        ("m0.py", 5, 10, "m1.py", 5, 10, 49),
    ]
    assert result.density == pytest.approx(75.0)


def test_min_lines_short_files_crlf_bom_and_ignored_regions(tmp_path):
    x = "".join(f"alpha_{i} = beta(gamma_{i}, delta={i}, eps='x')\n" for i in range(3))
    y = "".join(f"zeta_{i} = eta.theta(iota_{i}, kappa=[{i}, {i + 1}])\n" for i in range(4))
    files = {
        "e.py": ("import eta\n" + x + "\n" + y).replace("\n", "\r\n"),
        "f.py": "\ufeff# header\n"
        + x
        + "pass\n"
        + y
        + "# jscpd:ignore-start\n"
        + y
        + "# jscpd:ignore-end\nend = 1\n",
        "g.py": "zeta_0 = 1\nzeta_1 = 2\n",  # two lines: left out
    }
    rels = write(tmp_path, files)
    result = jscpd_duplication(tmp_path, rels, 20, 3)
    # The three x lines alone span 2 < 3 lines and are no clone; the second pass's run over them ends
    # one token past, on the next line, and is kept. The ignored copy of y is no clone.
    assert clones(result) == [("e.py", 2, 6, "f.py", 2, 5, 42), ("e.py", 6, 9, "f.py", 6, 9, 64)]
    assert result.physical_lines == {"e.py": 9, "f.py": 16, "g.py": 0}
    assert result.density == pytest.approx(36.0)


def test_files_jscpd_leaves_out_and_the_parallel_scan(tmp_path):
    assert scan_jscpd("a.py", b"x = '\xff'\n" * 20, 10, 1) is None  # not UTF-8
    assert scan_jscpd("a.py", b"x = 1\n" * 2, 1, 3) is None  # 2 lines < 3
    assert scan_jscpd("a.py", b"x = 1\n" * 3, 10, 3) is None  # 9 tokens < 10
    one = scan_jscpd("a.py", b"x = 1\n\n" * 5 + b"\n\n", 10, 3)
    assert one is not None
    assert (one.tokens, one.lines, one.line(0), one.line(14)) == (15, 9, 1, 9)
    files = {f"m{n}.py": DOCSTRING_PROJECT["a.py"] for n in range(4)}
    rels = write(tmp_path, files)
    serial = jscpd_duplication(tmp_path, [*rels, "missing.py"], 100, 10, workers=1)
    parallel = jscpd_duplication(tmp_path, [*rels, "missing.py"], 100, 10, workers=2)
    by_size = jscpd_duplication(tmp_path, [*rels, "missing.py"], 100, 10)  # small: stays in process
    assert clones(parallel) == clones(serial) == clones(by_size)
    assert serial.physical_lines["missing.py"] == 0
    assert find_clones_jscpd([], 100, 10).density == 0.0


def test_definition_must_be_sonar_or_jscpd():
    with pytest.raises(ConfigError) as info:
        loads('[quality.profiles.x.duplication]\ndefinition = "pmd"\n')
    text = str(info.value)
    assert "quality.profiles.x.duplication.definition: must be one of 'sonar', 'jscpd'" in text
    assert "'pmd'" in text


def test_jscpd_definition_compares_exact_tokens_only():
    cfg = loads('[quality.profiles.x.duplication]\ndefinition = "jscpd"\n')
    with pytest.raises(ConfigError, match=r"quality.profiles.x.duplication.normalize: definition \"jscpd\""):
        resolve_profile("x", cfg.section("quality")["profiles"])
    cfg = loads('[quality.profiles.x.duplication]\ndefinition = "jscpd"\nnormalize = []\n')
    settings = resolve_profile("x", cfg.section("quality")["profiles"]).duplication
    assert (settings.definition, settings.normalize, settings.min_tokens) == ("jscpd", (), 100)
