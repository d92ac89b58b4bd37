"""Reading files (encodings, unreadable and unparsable ones), globs, the process pool, git diffs."""

from __future__ import annotations

import os

import pytest

from buttress.errors import MeasureError
from buttress.quality.analysis import AnalysisOptions, analyse_files
from buttress.quality.gitdiff import changed_lines, merge_base, parse_diff, project_root
from buttress.quality.sources import discover, matches, read_source

from .test_duplication import BLOCK


def test_globs_cross_folders_only_with_double_star():
    assert matches("src/pkg/mod.py", ["src/**/*.py"])
    assert matches("src/mod.py", ["src/**/*.py"])
    assert not matches("src/pkg/mod.py", ["src/*.py"])
    assert matches("a/migrations/0001.py", ["**/migrations/**"])
    assert not matches("a/migration.py", ["**/migrations/**"])
    assert matches("x_pb2.py", ["**/*_pb2.py"])


def test_discover_skips_virtualenvs_and_caches(tmp_path):
    for rel in (
        "pkg/a.py",
        "pkg/.venv/lib/x.py",
        "pkg/__pycache__/a.py",
        "build/b.py",
        "pkg/gen/c.py",
        "README",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    found = discover(tmp_path, tmp_path, ["**/*.py"], ["pkg/gen/**", "build/**"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["pkg/a.py"]
    # a folder called build inside a package is code; only the profile's globs leave it out
    (tmp_path / "pkg/build").mkdir()
    (tmp_path / "pkg/build/steps.py").write_text("x = 1\n")
    found = discover(tmp_path, tmp_path, ["**/*.py"], ["build/**"])
    assert "pkg/build/steps.py" in [p.relative_to(tmp_path).as_posix() for p in found]
    assert discover(tmp_path / "pkg/a.py", tmp_path, ["**/*.py"], []) == [tmp_path / "pkg/a.py"]


def test_encodings_bom_and_crlf_are_read_as_python_reads_them(tmp_path):
    latin = tmp_path / "latin.py"
    latin.write_bytes("# -*- coding: latin-1 -*-\nname = 'café'\r\n".encode("latin-1"))
    source = read_source(latin, tmp_path)
    assert source.lines == ["# -*- coding: latin-1 -*-", "name = 'café'"]
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfx = 1\n")
    assert read_source(bom, tmp_path).text == "x = 1\n"


def test_unreadable_undecodable_and_unparsable_files_are_problems_not_crashes(tmp_path):
    (tmp_path / "bad_utf8.py").write_bytes(b"x = '\xff\xfe'\n")
    (tmp_path / "bad_cookie.py").write_bytes(b"# -*- coding: klingon -*-\nx = 1\n")
    (tmp_path / "syntax.py").write_text("def f(:\n    pass\n")
    (tmp_path / "nul.py").write_bytes(b"x = 1\x00\n")
    (tmp_path / "ok.py").write_text(BLOCK)
    secret = tmp_path / "secret.py"
    secret.write_text("y = 2\n")
    secret.chmod(0)
    try:
        paths = sorted(tmp_path.glob("*.py"))
        results = {a.rel: a for a in analyse_files(paths, tmp_path, AnalysisOptions(workers=1))}
    finally:
        secret.chmod(0o600)
    assert results["ok.py"].problem is None
    assert results["ok.py"].functions
    assert "cannot be decoded" in results["bad_utf8.py"].problem.message
    assert "cannot be decoded" in results["bad_cookie.py"].problem.message
    assert results["syntax.py"].problem.message.startswith("does not parse")
    assert results["syntax.py"].problem.line == 1
    assert "does not parse" in results["nul.py"].problem.message
    if os.geteuid() != 0:  # root reads anything; elsewhere the permission error is a problem too
        assert "cannot be read" in results["secret.py"].problem.message


def test_the_process_pool_gives_the_same_results_in_the_same_order(tmp_path):
    paths = []
    for i in range(8):
        path = tmp_path / f"m{i}.py"
        path.write_text(BLOCK.replace("compute_totals", f"f{i}") + ("x = (\n" if i == 3 else ""))
        paths.append(path)
    one = analyse_files(paths, tmp_path, AnalysisOptions(workers=1), frozenset({"m5.py"}))
    two = analyse_files(paths, tmp_path, AnalysisOptions(workers=2), frozenset({"m5.py"}))
    assert [a.rel for a in two] == [a.rel for a in one] == [f"m{i}.py" for i in range(8)]
    assert [a.functions for a in two] == [a.functions for a in one]
    assert [None if a.windows is None else list(a.windows.windows) for a in two] == [
        None if a.windows is None else list(a.windows.windows) for a in one
    ]
    assert two[3].problem is not None
    assert two[5].windows is None


def test_git_helpers(repo, tmp_path):
    repo.write("a.py", "x = 1\ny = 2\n")
    base = repo.commit("base")
    repo.write("a.py", "x = 1\nz = 3\ny = 2\n")
    repo.write("new.py", "q = 1\n")
    assert merge_base(repo.root, "main") == base
    assert changed_lines(repo.root, base) == {"a.py": {2}, "new.py": {1}}
    with pytest.raises(MeasureError, match="cannot find the merge base of 'nope'"):
        merge_base(repo.root, "nope")
    assert project_root(repo.root / "a.py") == repo.root.resolve()
    outside = tmp_path / "plain"
    outside.mkdir()
    assert project_root(outside) == outside.resolve()


def test_parse_diff_handles_deletions_and_new_files():
    diff = (
        "diff --git a/gone.py b/gone.py\n--- a/gone.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x\n-y\n"
        "diff --git a/k.py b/k.py\n--- a/k.py\n+++ b/k.py\n@@ -3 +3,2 @@\n-a\n+b\n+c\n@@ -9,0 +11 @@\n+d\n"
    )
    assert parse_diff(diff) == {"k.py": {3, 4, 11}}
