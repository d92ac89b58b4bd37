"""``buttress config check [FILE]``: validate a configuration and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.tree import Tree

from buttress import config as _config
from buttress.cli._console import console, err_console
from buttress.errors import ConfigError

__all__ = ["command"]


@click.group("config")
def command() -> None:
    """Check and summarise buttress.toml (or [tool.buttress] in pyproject.toml)."""


@command.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path | None) -> None:
    """Validate FILE (default: the buttress.toml that applies here) and print what it configures.

    Every problem is listed as `dotted.path: message (got value)`; the exit code is 1 when there is
    any, 2 when the file cannot be read.
    """
    path = file if file is not None else _config.find_config()
    if path is None:
        console.print("No buttress.toml or [tool.buttress] found; buttress runs on its embedded defaults.")
        return
    if not path.is_file():
        err_console.print(f"[red]error:[/] {path} does not exist or is not a file.")
        raise SystemExit(2)
    try:
        cfg = _config.load(path)
    except ConfigError as exc:
        err_console.print(f"[red]{len(exc.problems)} problem(s)[/] in {path}:", highlight=False)
        for problem in exc.problems:
            err_console.print(
                f"  [bold]{problem.path or '<file>'}[/]: {_problem_text(problem)}", highlight=False
            )
        raise SystemExit(1) from None
    tree = Tree(f"[green]ok[/] {path}")
    for name, section in cfg.sections.items():
        _summarise(tree.add(f"[bold]{name}[/]"), section)
    console.print(tree)


def _problem_text(problem: Any) -> str:
    text = str(problem)
    prefix = f"{problem.path}: " if problem.path else "<root>: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _summarise(node: Tree, value: Any, depth: int = 0) -> None:
    """A compact tree: tables expand, lists of tables list their items, scalars show their value."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if sub not in (None, [], {}):
                _summarise_entry(node, str(key), sub, depth)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _summarise(node.add(_label(item, str(i))), item, depth + 1)
    else:
        node.add(_fmt(value))


def _summarise_entry(node: Tree, key: str, sub: Any, depth: int) -> None:
    if isinstance(sub, dict) and depth < 3:
        _summarise(node.add(key), sub, depth + 1)
    elif isinstance(sub, list) and isinstance(sub[0], dict):
        child = node.add(f"{key}: {len(sub)} item(s)")
        for item in sub:
            _summarise(child.add(_label(item, "-")), item, depth + 1)
    else:
        node.add(f"{key} = {_fmt(sub)}")


def _label(item: Any, fallback: str) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return str(name) if name else fallback


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)
