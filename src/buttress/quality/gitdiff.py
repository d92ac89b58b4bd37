"""New code: the lines changed since the merge base of ``--base`` and ``HEAD``, from git.

The diff runs from the merge base to the *working tree* (``git diff --merge-base BASE``), so a local run
judges uncommitted edits too, and a pull request's CI judges exactly what the pull request adds.
Untracked files that git does not ignore are new in full. Only added or modified lines count: a deleted
line is not code anyone has to cover.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from buttress.errors import MeasureError

__all__ = ["changed_lines", "head_commit", "merge_base", "project_root"]

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            encoding="utf-8",
            errors="replace",
        )
    except FileNotFoundError:
        raise MeasureError("git is not installed; new code cannot be found without it") from None
    if done.returncode != 0:
        raise MeasureError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def project_root(start: Path) -> Path:
    """The git work tree containing ``start``, or ``start`` itself (a folder) outside git."""
    folder = start if start.is_dir() else start.parent
    try:
        return Path(_git(folder, "rev-parse", "--show-toplevel").strip())
    except MeasureError:
        return folder.resolve()


def head_commit(root: Path) -> str | None:
    """The commit checked out in ``root``, or ``None`` outside git or before the first commit."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", "HEAD").strip() or None
    except MeasureError:
        return None


def merge_base(root: Path, base: str) -> str:
    """The commit where ``HEAD`` left ``base``.

    Raises:
        MeasureError: ``base`` is not a ref git knows (fetch it: CI checkouts are often shallow).
    """
    try:
        return _git(root, "merge-base", base, "HEAD").strip()
    except MeasureError as exc:
        raise MeasureError(
            f"cannot find the merge base of {base!r} and HEAD ({exc}); check the ref exists "
            f"(in CI fetch it, e.g. `git fetch origin {base} --depth=1000`)"
        ) from None


def changed_lines(root: Path, base_commit: str) -> dict[str, set[int]]:
    """Line numbers added or modified since ``base_commit``, per file relative to ``root``.

    Working-tree edits and untracked files are included; paths use ``/`` separators.
    """
    out = parse_diff(
        _git(root, "diff", "--unified=0", "--no-color", "--no-ext-diff", "--no-renames", base_commit)
    )
    for rel in _git(root, "ls-files", "--others", "--exclude-standard").splitlines():
        path = root / rel
        try:
            count = len(path.read_text(encoding="utf-8", errors="replace").splitlines())
        except OSError:
            continue
        out[rel] = set(range(1, count + 1))
    return {rel: lines for rel, lines in out.items() if lines}


def parse_diff(text: str) -> dict[str, set[int]]:
    """Added line numbers per file from a ``--unified=0`` diff."""
    out: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            name = line[4:].strip()
            current = None if name == "/dev/null" else out.setdefault(name.removeprefix("b/"), set())
            continue
        m = _HUNK.match(line) if current is not None else None
        if m is not None and current is not None:
            start = int(m.group(1))
            current.update(range(start, start + int(m.group(2) or 1)))
    return out
