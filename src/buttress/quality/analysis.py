"""Read, parse and tokenize each file once, for every measure that needs it, in parallel when it pays.

Complexity needs the syntax tree and duplication needs the tokens; both come from the same read of the
file, in the same worker. Files are spread over a process pool only when there is enough source for the
pool's start-up (about 0.1 s) to be repaid — on a two-core machine that is a few megabytes.

The garbage collector is paused while files are analysed: syntax trees are large, acyclic and freed by
reference counting, and the collector's passes over them cost more than the parse itself.
"""

from __future__ import annotations

import gc
import os
import tokenize
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from buttress.quality.complexity import FunctionComplexity, measure_tree
from buttress.quality.duplication import TokenWindows, scan_tokens
from buttress.quality.model import FileProblem
from buttress.quality.sources import SourceFile, parse, read_source

__all__ = ["AnalysisOptions", "FileAnalysis", "analyse_files"]

#: Below this much source a pool costs more than it saves.
PARALLEL_BYTES = 3_000_000


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    """What to compute for each file.

    Attributes:
        complexity: measure every function.
        duplication: scan tokens for clone detection.
        min_tokens: clone window length.
        names: normalise identifiers for clone detection.
        literals: normalise strings and numbers for clone detection.
        workers: processes to use; ``0`` picks by size and CPU count, ``1`` stays in this process.
    """

    complexity: bool = True
    duplication: bool = True
    min_tokens: int = 100
    names: bool = True
    literals: bool = True
    workers: int = 0


@dataclass(slots=True)
class FileAnalysis:
    """What one file yielded.

    Attributes:
        rel: path relative to the project root.
        physical_lines: its physical line count (0 when it could not be read).
        problem: why it could not be measured, if so (the file is then left out of every figure).
        functions: complexity of each function (empty when not asked for).
        windows: token windows for clone detection (``None`` when not asked for, or excluded).
    """

    rel: str
    physical_lines: int = 0
    problem: FileProblem | None = None
    functions: tuple[FunctionComplexity, ...] = ()
    windows: TokenWindows | None = None


def analyse_file(path: Path, root: Path, options: AnalysisOptions, duplication: bool) -> FileAnalysis:
    """Read, parse and scan one file (what each worker runs)."""
    source = read_source(path, root)
    if isinstance(source, FileProblem):
        return FileAnalysis(source.path, problem=source)
    return analyse_source(source, options, duplication)


def analyse_source(source: SourceFile, options: AnalysisOptions, duplication: bool) -> FileAnalysis:
    """Measure an already-read file."""
    result = FileAnalysis(source.rel, source.physical_lines)
    tree = parse(source)
    if isinstance(tree, FileProblem):
        result.problem = tree
        return result
    if options.complexity:
        result.functions = tuple(measure_tree(tree, source.lines))
    del tree
    if options.duplication and duplication:
        try:
            result.windows = scan_tokens(
                source.rel, source.text, options.min_tokens, names=options.names, literals=options.literals
            )
        except (SyntaxError, tokenize.TokenError) as exc:
            result.problem = FileProblem(source.rel, f"cannot be tokenized: {exc}")
    return result


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored on exit, whatever its state was)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _worker(batch: list[tuple[str, str, AnalysisOptions, bool]]) -> list[FileAnalysis]:
    with paused_gc():
        return [analyse_file(Path(p), Path(r), o, d) for p, r, o, d in batch]


def analyse_files(
    paths: Sequence[Path], root: Path, options: AnalysisOptions, no_duplication: frozenset[str] = frozenset()
) -> list[FileAnalysis]:
    """Analyse ``paths`` (in that order), in a process pool when it pays.

    Args:
        paths: files to analyse.
        root: the project root that relative paths are computed against.
        options: what to compute.
        no_duplication: relative paths to leave out of clone detection (generated and data files).
    """
    from buttress.quality.sources import relative

    flags = [relative(p, root) not in no_duplication for p in paths]
    workers = options.workers or _auto_workers(paths)
    if workers <= 1 or len(paths) < 2 * workers:
        with paused_gc():
            return [analyse_file(p, root, options, d) for p, d in zip(paths, flags, strict=True)]
    # Interleave files over batches so each worker gets a similar mix of large and small files.
    jobs = [(str(p), str(root), options, d) for p, d in zip(paths, flags, strict=True)]
    order = sorted(range(len(jobs)), key=lambda i: -_size(paths[i]))
    nbatches = workers * 4
    batches: list[list[int]] = [order[i::nbatches] for i in range(nbatches)]
    results: list[FileAnalysis | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for idx, out in zip(batches, pool.map(_worker, [[jobs[i] for i in b] for b in batches]), strict=True):
            for i, r in zip(idx, out, strict=True):
                results[i] = r
    return [r for r in results if r is not None]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _auto_workers(paths: Sequence[Path]) -> int:
    total = sum(_size(p) for p in paths)
    if total < PARALLEL_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))
