"""One call that does what ``buttress quality check`` does: resolve, measure, judge, record.

::

    from buttress.quality import check

    result = check("src", base="main", profile="project")
    print(result.status, result.exit_code)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from buttress.quality.gate import Context, GateResult, Measure, Progress, run_gate
from buttress.quality.history import History
from buttress.quality.profiles import Profile, resolve_profile

__all__ = ["check", "load_section", "profile_for"]


def load_section(root: Path, config_file: str | Path | None = None) -> dict[str, Any]:
    """The validated ``[quality]`` section for ``root`` (its buttress.toml / pyproject.toml).

    Raises:
        ConfigError: the file has problems (all of them listed).
    """
    from buttress import config

    path = Path(config_file) if config_file is not None else config.find_config(root)
    cfg = config.load(path) if path is not None else config.Config({}, None)
    section: dict[str, Any] = cfg.section("quality")
    return section


def profile_for(section: dict[str, Any], name: str | None) -> Profile:
    """Resolve ``name`` (or the section's ``profile``) against the section's profiles."""
    return resolve_profile(name or section.get("profile") or "default", section.get("profiles") or {})


def _branch(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "branch", "--show-current"], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return None
    return out or None


def check(
    target: str | Path = ".",
    *,
    profile: str | Profile | None = None,
    base: str | None = None,
    run_tests: bool = False,
    root: str | Path | None = None,
    config_file: str | Path | None = None,
    record: bool = True,
    measures: Sequence[Measure] | None = None,
    on_progress: Progress | None = None,
) -> GateResult:
    """Measure ``target`` with ``profile`` and judge it; record the run in the history.

    Args:
        target: folder or file to measure.
        profile: a profile name (default: the configuration's ``quality.profile``) or a resolved one.
        base: git ref that new code is compared against.
        run_tests: run the profile's test command under coverage first.
        root: project root (default: the git work tree around ``target``).
        config_file: configuration file (default: found from ``root``).
        record: store the run in ``quality.history`` (the coverage-drop condition of later runs reads it).
        measures: measures to run (default: :data:`buttress.quality.measures.BUILTIN`).
        on_progress: told as each measure starts (see :func:`~buttress.quality.gate.run_gate`).

    Raises:
        ConfigError: bad configuration or an unknown profile.
    """
    from buttress.quality.gitdiff import project_root
    from buttress.quality.measures import BUILTIN

    target_path = Path(target).resolve()
    root_path = Path(root).resolve() if root is not None else project_root(target_path)
    section = load_section(root_path, config_file)
    resolved = profile if isinstance(profile, Profile) else profile_for(section, profile)
    history = History(root_path / section["history"])
    context = Context(root_path, target_path, resolved, base=base, run_tests=run_tests, history=history)
    result = run_gate(context, BUILTIN if measures is None else measures, on_progress)
    if record:
        _record(history, result, context.target_key, resolved.name, root_path)
    return result


def _record(history: History, result: GateResult, target: str, profile: str, root: Path) -> None:
    """Store the run's figures, and each file's coverage and duplicated lines, in the history."""
    files: dict[str, dict[str, Any]] = {}
    for measure, key, field in (
        ("coverage", "coverage", "coverage"),
        ("duplication", "duplicated", "duplicated"),
    ):
        m = result.measurements.get(measure)
        for rel, entry in (m.details.get("per_file", {}) if m is not None else {}).items():
            files.setdefault(rel, {})[key] = entry[field]
    overall: dict[str, float] = {}
    new: dict[str, float] = {}
    for m in result.measurements.values():
        overall.update(m.overall)
        new.update(m.new)
    history.record_run(
        commit=result.commit,
        branch=_branch(root),
        target=target,
        profile=profile,
        status=result.status,
        overall=overall,
        new=new,
        files=files,
    )
