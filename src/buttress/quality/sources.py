"""Finding the Python files a profile covers, and reading and parsing each one once.

Globs are matched against the path relative to the project root with ``/`` separators: ``*`` matches
within one path segment, ``**`` matches any number of segments (including none), ``?`` one character.
A file is measured when it matches an ``include`` glob and no ``exclude`` glob.
"""

from __future__ import annotations

import ast
import functools
import io
import os
import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from buttress.quality.model import FileProblem

__all__ = ["ALWAYS_EXCLUDED", "SourceFile", "discover", "glob_regex", "matches", "parse", "read_source"]

#: Folders never worth measuring, whatever the profile says: virtual environments, caches, VCS metadata.
#: (``build/`` and ``dist/`` are left to the profile's globs: a package may well have a ``build`` module.)
ALWAYS_EXCLUDED = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "node_modules",
        ".eggs",
        ".buttress",
    }
)


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The compiled regular expression for one glob (``**`` crosses folders, ``*`` does not)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(rel: str, patterns: Iterable[str]) -> bool:
    """Whether the relative path ``rel`` matches any of ``patterns``."""
    return any(glob_regex(p).match(rel) is not None for p in patterns)


def discover(target: Path, root: Path, include: Sequence[str], exclude: Sequence[str]) -> list[Path]:
    """The files under ``target`` (a folder or one file) that the globs select, sorted.

    Args:
        target: what the user asked to measure.
        root: the project root the globs are relative to.
        include: globs a file must match.
        exclude: globs that remove a file.
    """
    if target.is_file():
        candidates: Iterable[Path] = [target]
    else:
        candidates = _walk(target)
    chosen = []
    for path in candidates:
        rel = relative(path, root)
        if matches(rel, include) and not matches(rel, exclude):
            chosen.append(path)
    return sorted(chosen)


def _walk(folder: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        # Pruning in place keeps os.walk out of virtualenvs and caches entirely.
        dirnames[:] = sorted(d for d in dirnames if d not in ALWAYS_EXCLUDED and not d.endswith(".egg-info"))
        for name in filenames:
            yield Path(dirpath, name)


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (absolute when it lies outside)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


@dataclass(slots=True)
class SourceFile:
    r"""One Python file: its text, lines, and (once parsed) its syntax tree.

    Attributes:
        path: absolute path.
        rel: path relative to the project root, ``/``-separated (what reports show).
        text: the decoded source (newlines normalised to ``\\n``).
        lines: the physical lines of ``text``.
    """

    path: Path
    rel: str
    text: str
    lines: list[str]

    @property
    def physical_lines(self) -> int:
        """Number of physical lines, as editors count them."""
        return len(self.lines)


def read_source(path: Path, root: Path) -> SourceFile | FileProblem:
    """Read and decode one file (PEP 263 encoding cookie honoured) or say why it cannot be."""
    rel = relative(path, root)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return FileProblem(rel, f"cannot be read: {exc.strerror or exc}")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        return FileProblem(rel, f"cannot be decoded: {exc}")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it does not start another
    return SourceFile(path, rel, text, lines)


def parse(source: SourceFile) -> ast.Module | FileProblem:
    """The syntax tree of ``source``, or a :class:`FileProblem` naming the line that does not parse."""
    try:
        return ast.parse(source.text, filename=source.rel)
    except SyntaxError as exc:
        return FileProblem(source.rel, f"does not parse: {exc.msg}", exc.lineno or 0)
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return FileProblem(source.rel, f"does not parse: {exc}")
