"""Duplicated code with jscpd 5.3.3's definitions, so a figure compares with a jscpd run.

The gate's default is SonarQube's measure (:mod:`buttress.quality.duplication`); a profile chooses this one
with ``duplication.definition = "jscpd"``.

It measures what jscpd 5.3.3 measures with its defaults. Its tokens are found line by line
(:func:`jscpd_tokens`): a word, a run of digits and dots, a ``#`` comment to the end of the line, a quoted
string to its closing quote *or the end of the line* (so a docstring's inner lines are words and
punctuation), or any other character. Files with fewer than ``min_lines`` lines or ``min_tokens`` tokens
are left out. The windows are searched in path order (:func:`find_clones_jscpd`): the first place a
window appears is remembered, a later equal window opens a clone on it, and the clone grows while the
window that follows it in the first place keeps matching; a second pass joins each window's first two
places into runs and keeps a run that adds lines the first pass did not cover. A clone needs
``end - start >= min_lines`` in its first copy. The density is the sum of each clone's length in its
first copy (overlaps counted again) over the files' lines, each file counted to its last line holding a
token.
"""

from __future__ import annotations

import os
import re
import sys
import zlib
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import count
from operator import sub
from pathlib import Path

from buttress.quality.duplication import Clone, DuplicationResult, _window_hashes

__all__ = ["LineTokens", "find_clones_jscpd", "jscpd_duplication", "jscpd_tokens", "scan_jscpd"]


# --- jscpd's definition ------------------------------------------------------------------------------

#: Whitespace as jscpd (Rust's ``char::is_whitespace``) sees it, newline excepted: newlines end lines.
_JSCPD_SPACE = "\t\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: One match per jscpd token, each newline being a match of its own (it tells lines apart). The space
#: before a token is consumed with it, which is most of the text between tokens and much faster than a
#: failed match per blank. Alternatives start with different characters, so their order only matters
#: for speed (words first) and for the last one, any other single character.
_JSCPD_TOKEN = re.compile(
    f"[{_JSCPD_SPACE}]*("
    r"[^\W\d]\w*"  # a word (letters, digits, underscores), keywords included
    r"|\n"
    r"|[0-9][0-9.]*"  # a number is digits and dots: 1e5 is 1 then e5, 0x1F is 0 then x1F
    r"|#[^\n]*"  # a comment, to the end of the line, is one token (jscpd's default mode keeps them)
    r'|"(?:[^"\\\n]|\\.?)*"?'  # a string ends at its quote or at the end of its line: a docstring's
    r"|'(?:[^'\\\n]|\\.?)*'?"  # inner lines are words, so prose copied between docstrings is a clone
    f"|[^{_JSCPD_SPACE}]"
    ")"
)
#: Token text -> 64-bit code, filled as tokens are met. A newline is 0: it is a line break, not a token.
_JSCPD_CODES: dict[str, int] = {"\n": 0}


def _jscpd_code(value: str) -> None:
    data = value.encode("utf-8", "surrogatepass")
    # Two independent 32-bit checksums: jscpd's tokens (comments, prose) are far more varied than code's,
    # so one 32-bit code alone would let two different tokens meet.
    _JSCPD_CODES[value] = (zlib.crc32(data) << 32 | zlib.adler32(data)) or 1


def _without_ignored(text: str) -> str:
    """``text`` with the lines jscpd ignores blanked.

    They run from a line holding ``jscpd:ignore-start`` to the next one holding ``jscpd:ignore-end``.
    """
    lines = text.split("\n")
    ignoring = False
    for i, line in enumerate(lines):
        if "jscpd:ignore-start" in line:
            ignoring = True
        if "jscpd:ignore-end" in line:
            ignoring = False
            lines[i] = ""
        elif ignoring:
            lines[i] = ""
    return "\n".join(lines)


def _jscpd_text(text: str) -> str:
    # jscpd splits lines at "\n" and drops the "\r" of a "\r\n".
    text = text.replace("\r\n", "\n")
    return _without_ignored(text) if "jscpd:ignore" in text else text


def jscpd_tokens(text: str) -> list[tuple[str, int]]:
    """``(text, line)`` of each token jscpd 5.3.3 finds in Python source ``text`` (default mode).

    Slower than :func:`scan_jscpd`, which keeps codes only; for tests and for explaining a clone.
    """
    out: list[tuple[str, int]] = []
    line = 1
    for value in _JSCPD_TOKEN.findall(_jscpd_text(text)):
        if value == "\n":
            line += 1
        else:
            out.append((value, line))
    return out


@dataclass(slots=True)
class LineTokens:
    """One file tokenized jscpd's way, reduced to what :func:`find_clones_jscpd` needs.

    Attributes:
        rel: the file's path relative to the project root.
        windows: hash of each window of ``min_tokens`` tokens, by starting token.
        breaks: for each newline, how many tokens come before it (a token's line is found by bisection,
            so no per-token line table is kept).
        tokens: how many tokens the file has.
        lines: jscpd's line count: the last line holding a token.
    """

    rel: str
    windows: array[int]
    breaks: array[int]
    tokens: int
    lines: int

    def line(self, token: int) -> int:
        """The line token number ``token`` is on."""
        return bisect_right(self.breaks, token) + 1


def scan_jscpd(rel: str, data: bytes, min_tokens: int, min_lines: int) -> LineTokens | None:
    """Tokenize one file's bytes jscpd's way and hash its windows of ``min_tokens`` tokens.

    Returns ``None`` for a file jscpd leaves out: not UTF-8, fewer than ``min_lines`` lines (newlines,
    plus one for an unterminated last line) or fewer than ``min_tokens`` tokens.
    """
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    if lines < min_lines:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    found = _JSCPD_TOKEN.findall(_jscpd_text(text))
    codes = _JSCPD_CODES
    for value in set(found).difference(codes):
        _jscpd_code(value)
    coded = list(map(codes.__getitem__, found))
    newlines = [i for i, c in enumerate(coded) if not c]
    if len(coded) - len(newlines) < min_tokens:
        return None
    # The n-th newline (from 0) sits after newlines[n] - n tokens.
    breaks = array("I", map(sub, newlines, count()))
    values = list(filter(None, coded))
    last = bisect_right(breaks, len(values) - 1) + 1
    return LineTokens(rel, _window_hashes(values, min_tokens), breaks, len(values), last)


@dataclass(slots=True)
class _Open:
    """The clone being grown while a file is walked: where its first copy starts, and how far."""

    anchor: int  # file index of the first copy
    anchor_start: int  # its first window
    start: int  # first window of the copy in the file walked
    last: int  # last window of the copy matched so far


#: A clone as jscpd records it: (first file, first token, last token, other file, first, last, tokens).
_Span = tuple[int, int, int, int, int, int, int]


def find_clones_jscpd(
    files: Sequence[LineTokens], min_tokens: int = 100, min_lines: int = 10
) -> DuplicationResult:
    """Find clones the way jscpd 5.3.3 does (see the module docstring), with its counting.

    Args:
        files: each file jscpd would measure, scanned with the same ``min_tokens``; they are walked in
            path order, as jscpd walks them, because the first place a window appears is the original.
        min_tokens: the window length the files were scanned with.
        min_lines: a clone's first copy must satisfy ``end - start >= min_lines``.
    """
    files = sorted(files, key=lambda f: f.rel)
    seen: Counter[int] = Counter()
    for f in files:
        seen.update(f.windows)
    repeated = {h for h, c in seen.items() if c > 1}
    del seen
    first: dict[int, tuple[int, int]] = {}
    second: dict[int, tuple[int, int]] = {}
    spans: list[_Span] = []
    for fi in range(len(files)):
        spans.extend(_jscpd_file_spans(files, fi, repeated, first, second, min_tokens, min_lines))
    spans.extend(_second_pass(files, first, second, spans, min_tokens, min_lines))
    return _jscpd_result(files, spans)


def _jscpd_file_spans(
    files: Sequence[LineTokens],
    fi: int,
    repeated: set[int],
    first: dict[int, tuple[int, int]],
    second: dict[int, tuple[int, int]],
    k: int,
    min_lines: int,
) -> Iterator[_Span]:
    """The clones whose later copy is in ``files[fi]``.

    ``first`` and ``second`` record where each window appeared first and second in the files walked so
    far (shared across files, filled as they are walked).
    """
    w = files[fi].windows
    open_: _Open | None = None
    for i in [i for i, h in enumerate(w) if h in repeated]:
        h = w[i]
        earlier = first.get(h)
        if earlier is not None and h not in second:
            second[h] = (fi, i)
        if open_ is not None and i == open_.last + 1 and _anchor_continues(files, open_, i, h):
            open_.last = i
            continue
        if open_ is not None:
            yield from _flushed(files, fi, open_, k, min_lines)
        open_ = None if earlier is None else _Open(earlier[0], earlier[1], i, i)
        if earlier is None:
            first[h] = (fi, i)
    if open_ is not None:
        yield from _flushed(files, fi, open_, k, min_lines)


def _anchor_continues(files: Sequence[LineTokens], o: _Open, i: int, h: int) -> bool:
    """Whether the first copy goes on as window ``i`` does.

    jscpd grows a clone only along its first copy, never onto a third place that continues alike.
    """
    # The first copy is always earlier in the walk than window i, so it is never window i itself.
    at = o.anchor_start + (i - o.start)
    g = files[o.anchor].windows
    return at < len(g) and g[at] == h


def _flushed(files: Sequence[LineTokens], fi: int, o: _Open, k: int, min_lines: int) -> Iterator[_Span]:
    length = o.last - o.start + k  # tokens in the clone
    a = files[o.anchor]
    a_end = o.anchor_start + length - 1
    if a.line(a_end) - a.line(o.anchor_start) >= min_lines:
        yield (o.anchor, o.anchor_start, a_end, fi, o.start, o.start + length - 1, length)


def _second_pass(
    files: Sequence[LineTokens],
    first: dict[int, tuple[int, int]],
    second: dict[int, tuple[int, int]],
    spans: list[_Span],
    k: int,
    min_lines: int,
) -> list[_Span]:
    """The clones of jscpd's second pass.

    Each window's first two places are joined into runs of consecutive windows; a run is kept when it
    spans ``min_lines`` and adds lines the clones kept so far do not cover, in both files. A run that
    grew ends one token past its last window, as jscpd's does.
    """
    pairs = sorted({(*first[h], *second[h]) for h in second})
    covered = _Coverage(files, spans)
    out: list[_Span] = []
    run: list[int] | None = None  # [file a, start a, end a, file b, start b, end b, tokens, last a, last b]
    for fa, ta, fb, tb in pairs:
        if run is not None and (fa, fb, ta, tb) == (run[0], run[3], run[7] + 1, run[8] + 1):
            run[6] += 1
            run[7], run[8] = ta, tb
            if ta + k < files[fa].tokens:
                run[2] = ta + k
            if tb + k < files[fb].tokens:
                run[5] = tb + k
            continue
        if run is not None:
            out.extend(covered.kept(run, min_lines))
        run = [fa, ta, ta + k - 1, fb, tb, tb + k - 1, k, ta, tb]
    if run is not None:
        out.extend(covered.kept(run, min_lines))
    return out


class _Coverage:
    """Lines covered by kept clones, per file, as sorted disjoint ranges (adjacent ranges merged)."""

    def __init__(self, files: Sequence[LineTokens], spans: Iterable[_Span]) -> None:
        self.files = files
        self.ranges: dict[int, list[tuple[int, int]]] = {}
        for s in spans:
            self.add(s[0], self.lines(s[0], s[1], s[2]))
            self.add(s[3], self.lines(s[3], s[4], s[5]))

    def lines(self, fi: int, a: int, b: int) -> tuple[int, int]:
        f = self.files[fi]
        return f.line(a), f.line(b)

    def extends(self, fi: int, span: tuple[int, int]) -> bool:
        """Whether some line of ``span`` is not covered yet."""
        ranges = self.ranges.get(fi, [])
        at = bisect_right(ranges, (span[0], sys.maxsize)) - 1
        return at < 0 or ranges[at][1] < span[1]

    def add(self, fi: int, span: tuple[int, int]) -> None:
        ranges = self.ranges.setdefault(fi, [])
        lo, hi = span
        apart = [r for r in ranges if r[1] + 1 < lo or r[0] > hi + 1]
        touching = [r for r in ranges if not (r[1] + 1 < lo or r[0] > hi + 1)]
        # Overlapping or adjacent ranges merge, so a gap between two ranges is an uncovered line.
        merged = (min([lo, *(r[0] for r in touching)]), max([hi, *(r[1] for r in touching)]))
        self.ranges[fi] = sorted([*apart, merged])

    def kept(self, run: list[int], min_lines: int) -> list[_Span]:
        """``run`` as a clone when it is long enough and adds lines on both sides (then covered)."""
        a = self.lines(run[0], run[1], run[2])
        b = self.lines(run[3], run[4], run[5])
        if a[1] - a[0] < min_lines or not (self.extends(run[0], a) and self.extends(run[3], b)):
            return []
        self.add(run[0], a)
        self.add(run[3], b)
        return [(run[0], run[1], run[2], run[3], run[4], run[5], run[6])]


def _jscpd_result(files: Sequence[LineTokens], spans: Iterable[_Span]) -> DuplicationResult:
    """Clones in jscpd's report form.

    A pair reported twice (same files, same first lines) is kept once, the first time; the list is
    sorted by the first copy's path and line, then the other's.
    """
    seen: set[tuple[str, int, str, int]] = set()
    clones: list[Clone] = []
    duplicated: dict[str, set[int]] = {f.rel: set() for f in files}
    for fa, a0, a1, fb, b0, b1, length in spans:
        fa_, fb_ = files[fa], files[fb]
        # jscpd puts the smaller (path, line) first; files are walked in path order and a clone's first
        # copy is met before its other one, so the first copy is already that one.
        a = (fa_.rel, fa_.line(a0), fa_.line(a1))
        b = (fb_.rel, fb_.line(b0), fb_.line(b1))
        key = (a[0], a[1], b[0], b[1])
        if key in seen:
            continue
        seen.add(key)
        clones.append(Clone(b[0], b[1], b[2], a[0], a[1], a[2], length))
        duplicated[a[0]].update(range(a[1], a[2] + 1))
        duplicated[b[0]].update(range(b[1], b[2] + 1))
    clones.sort(key=lambda c: (c.original_path, c.original_line, c.path, c.line))
    lines = {f.rel: f.lines for f in files}
    return DuplicationResult(clones, duplicated, lines, "jscpd")


def jscpd_duplication(
    root: Path, rels: Sequence[str], min_tokens: int = 100, min_lines: int = 10, *, workers: int = 0
) -> DuplicationResult:
    """Read ``rels`` (paths under ``root``) and measure their duplication with jscpd's definition.

    Every file is a key of the result's ``physical_lines``; a file jscpd would leave out (unreadable,
    not UTF-8, too few lines or tokens) counts 0 lines and holds no clone.

    Args:
        root: the project root ``rels`` are relative to.
        rels: the files to measure.
        min_tokens: window length.
        min_lines: a clone's first copy must satisfy ``end - start >= min_lines``.
        workers: processes for tokenizing; ``0`` picks by the amount of source (as the analysis pass
            does), ``1`` stays in this process.
    """
    jobs = [(str(root / rel), rel) for rel in rels]
    workers = workers or _jscpd_workers(jobs)
    if workers <= 1 or len(jobs) < 2 * workers:
        files = _scan_files(jobs, min_tokens, min_lines)
    else:
        # Interleaved batches, so each process gets a share of the large files.
        batches = [jobs[i :: workers * 4] for i in range(workers * 4)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            done = pool.map(_scan_files, batches, [min_tokens] * len(batches), [min_lines] * len(batches))
            files = [f for batch in done for f in batch]
    result = find_clones_jscpd(files, min_tokens, min_lines)
    for rel in rels:
        result.physical_lines.setdefault(rel, 0)
        result.duplicated.setdefault(rel, set())
    return result


def _scan_files(jobs: Sequence[tuple[str, str]], min_tokens: int, min_lines: int) -> list[LineTokens]:
    """Each ``(path, rel)`` read and scanned; the ones jscpd leaves out are not in the list."""
    out = []
    for path, rel in jobs:
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        scanned = scan_jscpd(rel, data, min_tokens, min_lines)
        if scanned is not None:
            out.append(scanned)
    return out


def _jscpd_workers(jobs: Sequence[tuple[str, str]]) -> int:
    from buttress.quality.analysis import PARALLEL_BYTES

    total = 0
    for path, _ in jobs:
        try:
            total += os.stat(path).st_size
        except OSError:
            pass
    return 1 if total < PARALLEL_BYTES else max(1, min(os.cpu_count() or 1, 4))
