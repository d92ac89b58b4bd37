"""Duplicated code, with SonarQube's semantics: token blocks, normalised, counted in lines.

A *clone* is a run of at least ``min_tokens`` (100) consecutive tokens that appears twice or more and
spans at least ``min_lines`` (10) physical lines in each place. Comments, blank lines, newlines and
indentation tokens are not tokens here. With the default normalisation every name becomes ``$N`` and
every string or number ``$L``, so a block copied and then renamed is still a clone (set
``normalize = []`` for exact copies only).

**Density** = duplicated lines / physical lines × 100, where a line is duplicated when it lies inside
any clone (either copy). Files a profile marks as generated or data are left out of both counts.

How it is found, in linear time:

1. :func:`scan_tokens` turns a file into token codes (see :func:`tokens`) and computes a polynomial
   hash of every window of ``min_tokens`` tokens from prefix hashes (one multiply-add per token);
2. :func:`find_clones` counts every window hash across all files at C speed, keeps the hashes seen
   more than once, and walks those positions in file order: the first place a window appears is
   remembered, and a later equal window starts a clone that is extended while the following windows
   still match (so a clone grows token by token past ``min_tokens``); positions inside a clone are not
   restarted;
3. clones that span fewer than ``min_lines`` lines are dropped, and the rest mark their lines.

**jscpd's definition** (``duplication.definition = "jscpd"``) is in :mod:`buttress.quality.jscpd`.
"""

from __future__ import annotations

import keyword
import re
import sys
import tokenize
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.quality.analysis import FileAnalysis
    from buttress.quality.gate import Context, Measurement
    from buttress.quality.model import Finding

__all__ = [
    "DEFINITIONS",
    "Clone",
    "DuplicationMeasure",
    "DuplicationResult",
    "TokenWindows",
    "find_clones",
    "new_code_density",
    "scan_tokens",
    "tokens",
]

#: What ``duplication.definition`` may name: SonarQube's measure (the default) or jscpd 5.3.3's.
DEFINITIONS = ("sonar", "jscpd")

_SKIP = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
)
_KEYWORDS = frozenset(keyword.kwlist)
_MASK = (1 << 64) - 1
_BASE = 0x100000001B3  # an odd 64-bit multiplier (FNV prime): spreads small token codes well
_NAME_CODE = zlib.crc32(b"$N")
_LITERAL_CODE = zlib.crc32(b"$L")
#: Token text -> code, filled as tokens are met (keywords and operators repeat endlessly).
_CODES: dict[str, int] = {}


def _code(value: str) -> int:
    code = _CODES[value] = zlib.crc32(value.encode()) or 1
    return code


@dataclass(slots=True)
class TokenWindows:
    """One file's tokens reduced to what clone detection needs (cheap to send between processes).

    Attributes:
        rel: the file's path relative to the project root.
        windows: hash of each window of ``min_tokens`` tokens, by starting token.
        start_lines: the line each token starts on.
        end_lines: the line each token ends on (strings can span lines).
        content: per token, its normalised text (kept only when ``keep_text``; used in tests).
    """

    rel: str
    windows: array[int]
    start_lines: array[int]
    end_lines: array[int]
    content: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """How many tokens the file has."""
        return len(self.start_lines)


def scan_tokens(
    rel: str,
    text: str,
    min_tokens: int,
    *,
    names: bool = True,
    literals: bool = True,
    keep_text: bool = False,
) -> TokenWindows:
    """Tokenize ``text`` and hash every window of ``min_tokens`` normalised tokens.

    Args:
        rel: the path reports will show.
        text: Python source (it should parse; see :func:`tokens`).
        min_tokens: window length.
        names: replace identifiers (not keywords) by one placeholder.
        literals: replace strings and numbers by one placeholder.
        keep_text: also keep each normalised token (for tests and debugging).

    Raises:
        tokenize.TokenError, SyntaxError: when ``text`` cannot be tokenized.
    """
    toks = list(tokens(text))
    codes = _codes(toks, names, literals)
    starts = array("I", [t[2] for t in toks])
    ends = array("I", [t[3] for t in toks])
    content = _normalised(toks, names, literals) if keep_text else []
    return TokenWindows(rel, _window_hashes(codes, min_tokens), starts, ends, content)


def _codes(toks: list[tuple[int, str, int, int]], names: bool, literals: bool) -> list[int]:
    kw, cache = _KEYWORDS, _CODES
    # One comprehension rather than a loop of appends: about twice as fast.
    return [
        _NAME_CODE
        if kind == NAME and names and value not in kw
        else _LITERAL_CODE
        if kind == LITERAL and literals
        else cache.get(value) or _code(value)
        for kind, value, _, _ in toks
    ]


def _normalised(toks: list[tuple[int, str, int, int]], names: bool, literals: bool) -> list[str]:
    kw = _KEYWORDS
    return [
        "$N"
        if kind == NAME and names and value not in kw
        else "$L"
        if kind == LITERAL and literals
        else value
        for kind, value, _, _ in toks
    ]


#: Token kinds as clone detection sees them: a name or keyword, a string or number, anything else.
NAME, LITERAL, OTHER = 0, 1, 2


def _uncaptured(pattern: str) -> str:
    """``pattern`` with its groups made non-capturing, so the scanner's group numbers stay fixed."""
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


_PREFIX = r"(?:[bBrRuUfF]|[bB][rR]|[rR][bB]|[fF][rR]|[rR][fF])?"
_TRIPLE = (
    _PREFIX + r"(?:'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''" + r'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*""")'
)
_SINGLE = _PREFIX + r"""(?:'[^'\\\n]*(?:\\.[^'\\\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*")"""
# One alternation over the whole text: skipped matter (comments, line continuations, newlines), then
# strings (before names, because of prefixes such as b'' and rf""), numbers, names, operators.
_SCANNER = re.compile(
    r"[ \t\f]*(?:(#[^\n]*|\\\n|\n)|("
    + _TRIPLE
    + "|"
    + _SINGLE
    + ")|("
    + _uncaptured(tokenize.Number)
    + r")|(\w+)|("
    + _uncaptured(tokenize.Special)
    + "))",
    re.S,
)
_GROUP_KIND = {2: LITERAL, 3: LITERAL, 4: NAME, 5: OTHER}
_KINDS = {tokenize.NAME: NAME, tokenize.STRING: LITERAL, tokenize.NUMBER: LITERAL}


def tokens(text: str) -> Iterator[tuple[int, str, int, int]]:
    """``(kind, text, first line, last line)`` of each token of ``text``; comments and layout left out.

    On Python 3.11 :mod:`tokenize` is written in Python and costs about 2 µs a token, so one regular
    expression over the whole text does the same job about three times faster; the test suite checks
    that it yields exactly what :mod:`tokenize` yields. When it meets anything it does not expect (which
    source that parses never contains on 3.11), and on Python 3.12+ (whose :mod:`tokenize` is fast and
    splits f-strings into parts), :mod:`tokenize` itself is used, with each f-string folded back into
    one literal so both paths count the same tokens.
    """
    if sys.version_info < (3, 12):
        out = _regex_tokens(text)
        if out is not None:
            yield from out
            return
    yield from _tokenize_tokens(text)


def _regex_tokens(text: str) -> list[tuple[int, str, int, int]] | None:
    out: list[tuple[int, str, int, int]] = []
    append = out.append
    count = text.count
    line = 1
    last = 0  # where the previous match ended: a gap means the scanner skipped something
    seen = 0  # offset up to which newlines are counted into `line`
    kinds = _GROUP_KIND
    for m in _SCANNER.finditer(text):
        if m.start() != last:
            return None
        last = m.end()
        group = m.lastindex
        if group is None or group == 1:
            continue
        start = m.start(group)
        line += count("\n", seen, start)
        seen = start
        value = m.group(group)
        append((kinds[group], value, line, line + value.count("\n") if group == 2 else line))
    if text[last:].strip():
        return None
    return out


def _tokenize_tokens(text: str) -> Iterator[tuple[int, str, int, int]]:
    lines = iter(text.splitlines(keepends=True))
    depth = 0
    first = 0
    fstring_start = getattr(tokenize, "FSTRING_START", -1)
    fstring_end = getattr(tokenize, "FSTRING_END", -1)
    for tok in tokenize.generate_tokens(lambda: next(lines, "")):
        kind = tok.type
        if kind == fstring_start:
            first = tok.start[0] if depth == 0 else first
            depth += 1
        elif kind == fstring_end:
            depth -= 1
            if depth == 0:
                yield LITERAL, "f-string", first, tok.end[0]
        elif not depth and kind not in _SKIP:
            yield _KINDS.get(kind, OTHER), tok.string, tok.start[0], tok.end[0]


def _window_hashes(codes: Sequence[int], k: int) -> array[int]:
    n = len(codes)
    out = array("Q")
    if n < k or k <= 0:
        return out
    mask, base = _MASK, _BASE
    prefix = [0] * (n + 1)
    h = 0
    for i, c in enumerate(codes):
        h = (h * base + c) & mask
        prefix[i + 1] = h
    top = pow(base, k, 1 << 64)
    out.extend((prefix[i + k] - prefix[i] * top) & mask for i in range(n - k + 1))
    return out


@dataclass(frozen=True, slots=True)
class Clone:
    """One duplicated block: where the copy is, and the earlier place it copies.

    Lines are physical and inclusive. ``tokens`` is the length of the run in tokens.
    """

    path: str
    line: int
    end_line: int
    original_path: str
    original_line: int
    original_end_line: int
    tokens: int

    @property
    def lines(self) -> int:
        """Physical lines the copy spans."""
        return self.end_line - self.line + 1


@dataclass(slots=True)
class DuplicationResult:
    """Clones found and the lines they cover.

    Attributes:
        clones: every clone, in file order of the copy (with jscpd's definition, in jscpd's report
            order; the original is jscpd's first fragment).
        duplicated: per file, the set of line numbers inside a clone (either copy).
        physical_lines: per file, the lines it counts for (every measured file is a key): its physical
            lines, or with jscpd's definition its lines up to the last one holding a token (0 for a file
            jscpd leaves out).
        definition: ``"sonar"`` or ``"jscpd"``: what :attr:`duplicated_lines` counts.
    """

    clones: list[Clone]
    duplicated: dict[str, set[int]]
    physical_lines: dict[str, int]
    definition: str = "sonar"

    @property
    def duplicated_lines(self) -> int:
        """Duplicated lines over all files.

        Sonar: distinct lines inside any copy. jscpd: each clone's length in its first copy, summed (a
        line inside two clones counts twice).
        """
        if self.definition == "jscpd":
            return sum(c.original_end_line - c.original_line + 1 for c in self.clones)
        return sum(len(v) for v in self.duplicated.values())

    @property
    def total_lines(self) -> int:
        """Physical lines over all files."""
        return sum(self.physical_lines.values())

    @property
    def density(self) -> float:
        """:attr:`duplicated_lines` / :attr:`total_lines` × 100 (0 when there are no lines)."""
        total = self.total_lines
        return 100.0 * self.duplicated_lines / total if total else 0.0


def find_clones(
    files: Sequence[TokenWindows], physical_lines: dict[str, int], min_tokens: int = 100, min_lines: int = 10
) -> DuplicationResult:
    """Find every clone across ``files`` (see the module docstring for the method).

    Args:
        files: each file's token windows, all computed with the same ``min_tokens``.
        physical_lines: physical line count of each file (the density's denominator).
        min_tokens: the window length the files were scanned with.
        min_lines: a clone must span at least this many lines in both places.
    """
    counts: Counter[int] = Counter()
    for f in files:
        counts.update(f.windows)
    repeated = {h for h, c in counts.items() if c > 1}
    del counts
    first: dict[int, tuple[int, int]] = {}
    clones: list[Clone] = []
    for fi in range(len(files)):
        clones.extend(_file_clones(files, fi, repeated, first, min_tokens))
    kept = [
        c for c in clones if c.lines >= min_lines and c.original_end_line - c.original_line + 1 >= min_lines
    ]
    duplicated: dict[str, set[int]] = {rel: set() for rel in physical_lines}
    for path, line, end in iter_clone_lines(kept):
        duplicated.setdefault(path, set()).update(range(line, end + 1))
    return DuplicationResult(kept, duplicated, dict(physical_lines))


def _file_clones(
    files: Sequence[TokenWindows], fi: int, repeated: set[int], first: dict[int, tuple[int, int]], k: int
) -> Iterator[Clone]:
    """The clones whose copy is in ``files[fi]``, each against the first place its start appeared.

    ``first`` (hash -> first file and position) is shared across files and filled as they are walked.
    """
    f = files[fi]
    w = f.windows
    covered = -1
    for i in [i for i, h in enumerate(w) if h in repeated]:
        h = w[i]
        earlier = first.setdefault(h, (fi, i))
        if i <= covered or earlier == (fi, i):
            continue  # inside the clone just found, or the first time this window is seen
        gi, j = earlier
        if gi == fi and j + k > i:
            continue  # a block overlapping itself is repetition, not a copy
        length = _run_length(w, i, files[gi].windows, j, k if gi == fi else 0)
        covered = i + length - 1
        last = length - 1 + k - 1  # offset of the last token of the run
        yield _clone(f, i, i + last, files[gi], j, j + last, length - 1 + k)


def _run_length(w: array[int], i: int, g: array[int], j: int, self_gap: int) -> int:
    """How many consecutive windows match from ``w[i]`` and ``g[j]`` (never overlapping itself)."""
    limit = min(len(w) - i, len(g) - j)
    if self_gap:
        limit = min(limit, i - j - self_gap + 1)
    length = 1
    while length < limit and w[i + length] == g[j + length]:
        length += 1
    return length


def _clone(f: TokenWindows, a: int, b: int, g: TokenWindows, c: int, d: int, tokens: int) -> Clone:
    return Clone(f.rel, f.start_lines[a], f.end_lines[b], g.rel, g.start_lines[c], g.end_lines[d], tokens)


def new_code_density(result: DuplicationResult, new_lines: dict[str, set[int]]) -> tuple[float, int, int]:
    """Duplication among changed lines: (density %, duplicated new lines, new lines).

    Only files that are part of ``result`` count, so excluded (generated, data) files stay out.
    """
    dup = total = 0
    for rel, lines in new_lines.items():
        if rel not in result.physical_lines:
            continue
        total += len(lines)
        dup += len(lines & result.duplicated.get(rel, set()))
    return (100.0 * dup / total if total else 0.0), dup, total


def iter_clone_lines(clones: Iterable[Clone]) -> Iterable[tuple[str, int, int]]:
    """Each copy and each original as ``(path, first line, last line)``."""
    for c in clones:
        yield c.path, c.line, c.end_line
        yield c.original_path, c.original_line, c.original_end_line


class DuplicationMeasure:
    """The ``duplication`` measure: density, duplicated lines and blocks, overall and on new code.

    Files matching the profile's ``duplication.exclude`` globs (generated code, data tables) are left
    out of both the duplicated and the physical line counts. On new code the density is the share of
    changed lines that lie in a clone; it is not judged when fewer than ``min_new_lines`` lines changed.
    """

    name: str = "duplication"
    metrics: tuple[str, ...] = ("duplication", "duplicated_lines", "duplicated_blocks")

    def compute(self, context: Context) -> Measurement:
        """Find clones across every measured file that is not excluded from duplication."""
        from buttress.quality.gate import Measurement

        measured = context.measured()
        result = _measure(context, measured)
        out = Measurement(self.name)
        out.overall = {
            "duplication": round(result.density, 4),
            "duplicated_lines": float(result.duplicated_lines),
            "duplicated_blocks": float(len(result.clones)),
        }
        items = []
        pairs = []
        for clone in result.clones:
            finding, pair = _clone_finding(clone, context)
            items.append((float(clone.lines), finding))
            pairs.append(pair)
        out.items = {"duplication": items, "duplicated_lines": items, "duplicated_blocks": items}
        new_items = [(v, f) for v, f in items if f.new]
        out.new_items = {
            "duplication": new_items,
            "duplicated_lines": new_items,
            "duplicated_blocks": new_items,
        }
        out.details["clones"] = pairs
        out.details["per_file"] = {
            rel: {"lines": lines, "duplicated": len(result.duplicated.get(rel, ()))}
            for rel, lines in result.physical_lines.items()
        }
        excluded = len(measured) - len(result.physical_lines)
        if excluded:
            out.notes.append(f"{excluded} file(s) left out of duplication by duplication.exclude")
        if result.definition == "jscpd":
            out.notes.append(_jscpd_note(result))
        if context.new_lines is not None:
            _new_code(out, result, context)
        return out


def _measure(context: Context, measured: list[FileAnalysis]) -> DuplicationResult:
    """Clones among the measured files not excluded from duplication, by the profile's definition."""
    settings = context.profile.duplication
    if settings.definition == "jscpd":
        from buttress.quality.sources import matches

        # The analysis pass's windows are Sonar's tokens: only the choice of files is taken from it.
        rels = [a.rel for a in measured if not matches(a.rel, settings.exclude)]
        from buttress.quality.jscpd import jscpd_duplication

        return jscpd_duplication(
            context.root, rels, settings.min_tokens, settings.min_lines, workers=context.profile.workers
        )
    scanned = [a for a in measured if a.windows is not None]
    windows = [a.windows for a in scanned if a.windows is not None]
    physical = {a.rel: a.physical_lines for a in scanned}
    return find_clones(windows, physical, settings.min_tokens, settings.min_lines)


def _jscpd_note(result: DuplicationResult) -> str:
    short = sum(1 for lines in result.physical_lines.values() if not lines)
    return (
        "duplication measured with jscpd 5.3.3's definition: the density is each clone's length in its "
        f"first copy, summed, over the lines; {short} file(s) too short for it (under min_lines lines or "
        "min_tokens tokens) count 0 lines"
    )


def _new_code(out: Measurement, result: DuplicationResult, context: Context) -> None:
    """The new-code figures, or why they are not judged (a change smaller than ``min_new_lines``)."""
    density, dup, _ = new_code_density(result, context.new_lines or {})
    out.new = {
        "duplication": round(density, 4),
        "duplicated_lines": float(dup),
        "duplicated_blocks": float(len(out.new_items.get("duplicated_blocks", []))),
    }
    minimum = context.profile.coverage.min_new_lines
    count = context.new_line_count()
    if count < minimum:
        reason = (
            f"only {count} new lines (< {minimum}); like SonarQube, duplication on new code is not "
            "judged for small changes"
        )
        out.skipped_new["duplication"] = out.skipped_new["duplicated_lines"] = reason


def _clone_finding(clone: Clone, context: Context) -> tuple[Finding, dict[str, Any]]:
    """The report finding for ``clone`` and the side-by-side entry the HTML report shows."""
    from buttress.quality.model import Finding

    snippet = "\n".join(context.lines(clone.path)[clone.line - 1 : clone.end_line])
    original = "\n".join(
        context.lines(clone.original_path)[clone.original_line - 1 : clone.original_end_line]
    )
    new = context.touches_new(clone.path, clone.line, clone.end_line) or context.touches_new(
        clone.original_path, clone.original_line, clone.original_end_line
    )
    where = {
        "path": clone.path,
        "line": clone.line,
        "end_line": clone.end_line,
        "original_path": clone.original_path,
        "original_line": clone.original_line,
        "original_end_line": clone.original_end_line,
        "tokens": clone.tokens,
    }
    finding = Finding(
        "duplication.block",
        clone.path,
        clone.line,
        clone.end_line,
        f"lines {clone.line}-{clone.end_line} duplicate {clone.original_path}:"
        f"{clone.original_line}-{clone.original_end_line} ({clone.tokens} tokens)",
        "error",
        " ".join(snippet.split()),
        new,
        {**where, "lines": clone.lines, "original": clone.original_path},
    )
    return finding, {**where, "text": snippet, "original_text": original, "new": new}
