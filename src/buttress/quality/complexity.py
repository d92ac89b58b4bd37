"""Cyclomatic and cognitive complexity of every function, in one walk of the syntax tree.

**Cyclomatic complexity** (McCabe) is 1 plus the number of decision points in the function's own body,
counted as radon counts them, so figures agree with ``radon cc``:

=====================================  =============================================
``if``, ``elif``, conditional expr.    +1 each
``for``, ``async for``, ``while``      +1, and +1 more for an ``else`` clause
``try``                                +1 per ``except`` handler, +1 for ``else``
``and`` / ``or``                       +1 per operand after the first
comprehension                          +1 per ``for``, +1 per ``if``
``match``                              +1 per ``case`` except a bare ``case _``
``assert``                             +1
=====================================  =============================================

Nested functions and classes are measured on their own and add nothing to the enclosing function.

**Cognitive complexity** follows SonarSource's definition (G. Ann Campbell, *Cognitive Complexity*,
2018) as sonar-python applies it to Python:

* +1, plus the current nesting level, for ``if``, conditional expressions, ``for``, ``while``,
  ``except`` and ``match``;
* +1 (no nesting penalty) for ``elif`` and for every ``else`` (of ``if``, loops and ``try``), and for
  each *sequence* of like boolean operators: ``a and b and c`` is +1, ``a and b or c`` is +2;
* the bodies of those structures, conditional expressions, lambdas and nested functions raise the
  nesting level; ``try``, ``finally`` and ``with`` bodies do not;
* a nested function's increments count toward the enclosing function too (at the deeper nesting),
  except that a decorator-style wrapper (an outer function holding only the inner ``def`` and
  ``return name``) adds no nesting; a class resets nesting to 0.

Both figures come from a single recursive walk: each increment is added to every function that is
open at that point, each with its own nesting offset.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.quality.gate import Context, Measurement

__all__ = ["ComplexityMeasure", "FunctionComplexity", "measure_source", "measure_tree"]


@dataclass(frozen=True, slots=True)
class FunctionComplexity:
    """The complexity figures of one function or method.

    Attributes:
        name: qualified name (``Class.method``, ``outer.<locals>.inner``).
        line: line of the ``def`` keyword.
        end_line: last line of the body.
        cyclomatic: McCabe complexity of its own body (radon's counting).
        cognitive: Sonar cognitive complexity, nested functions included.
        signature: the ``def`` line, stripped, used to fingerprint findings on this function.
    """

    name: str
    line: int
    end_line: int
    cyclomatic: int
    cognitive: int
    signature: str = ""


class _Open:
    """A function whose body is being walked: its running totals and its nesting offset."""

    __slots__ = ("cognitive", "cyclomatic", "line", "name", "node", "offset")

    def __init__(self, name: str, node: ast.AST, line: int) -> None:
        self.name = name
        self.node = node
        self.line = line
        self.cyclomatic = 1
        self.cognitive = 0
        self.offset = 0  # added to the walker's level to get this function's own nesting


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)

# Node types that can hold nothing that counts: skipping them (and every `ctx` field) halves the walk.
_LEAVES: tuple[type, ...] = (
    ast.Name,
    ast.Constant,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Global,
    ast.Nonlocal,
    ast.Import,
    ast.ImportFrom,
    ast.alias,
    ast.expr_context,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.boolop,
    ast.MatchSingleton,
    ast.MatchStar,
    ast.TypeIgnore,
)
_SCALAR_FIELDS = frozenset(
    {
        "ctx",
        "id",
        "name",
        "arg",
        "attr",
        "module",
        "kind",
        "type_comment",
        "conversion",
        "level",
        "asname",
        "simple",
        "is_async",
        "op",
    }
)

#: Per node type, the fields worth descending into (filled lazily).
_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(kind: type) -> tuple[str, ...]:
    if issubclass(kind, _LEAVES):
        return ()
    fields: tuple[str, ...] = getattr(kind, "_fields", ())
    return tuple(f for f in fields if f not in _SCALAR_FIELDS)


class _Walker:
    """The single pass: dispatches on node type; everything else is walked generically."""

    __slots__ = ("_handlers", "frame_is_function", "level", "lines", "open", "results", "scope")

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.level = 0
        self.open: list[_Open] = []
        self.results: list[FunctionComplexity] = []
        self.scope: list[str] = []
        self.frame_is_function = False
        self._handlers: dict[type, Callable[[ast.AST], None]] = {
            ast.FunctionDef: self._function,
            ast.AsyncFunctionDef: self._function,
            ast.ClassDef: self._class,
            ast.If: self._if,
            ast.For: self._loop,
            ast.AsyncFor: self._loop,
            ast.While: self._loop,
            ast.Try: self._try,
            ast.TryStar: self._try,
            ast.Match: self._match,
            ast.BoolOp: self._boolop,
            ast.IfExp: self._ifexp,
            ast.Lambda: self._lambda,
            ast.comprehension: self._comprehension,
            ast.Assert: self._assert,
        }

    # -- dispatch ---------------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        kind = type(node)
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(node)
            return
        fields = _FIELDS.get(kind)
        if fields is None:
            fields = _FIELDS[kind] = _child_fields(kind)
        visit = self.visit
        for name in fields:
            value = getattr(node, name)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        visit(item)
            elif isinstance(value, ast.AST):
                visit(value)

    def visit_all(self, nodes: list[ast.stmt] | list[ast.expr]) -> None:
        visit = self.visit
        for node in nodes:
            visit(node)

    def nested(self, nodes: list[ast.stmt] | list[ast.expr]) -> None:
        """Walk ``nodes`` one nesting level deeper."""
        self.level += 1
        self.visit_all(nodes)
        self.level -= 1

    # -- increments -------------------------------------------------------------------------------

    def structural(self) -> None:
        """+1 plus nesting, for every open function (each sees its own nesting)."""
        level = self.level
        for f in self.open:
            f.cognitive += 1 + level + f.offset

    def flat(self, n: int = 1) -> None:
        """+n with no nesting penalty, for every open function."""
        for f in self.open:
            f.cognitive += n

    def decision(self, n: int = 1) -> None:
        """+n cyclomatic, for the innermost function only."""
        if self.open:
            self.open[-1].cyclomatic += n

    # -- scopes -----------------------------------------------------------------------------------

    def _function(self, node: ast.AST) -> None:
        assert isinstance(node, _FUNCTIONS)
        qual = ".".join([*self.scope, node.name]) if self.scope else node.name
        record = _Open(qual, node, node.lineno)
        saved_offsets = [f.offset for f in self.open]
        if self.frame_is_function:
            # Sonar: a nested function nests one level deeper than where it is defined, unless the
            # enclosing function is only a wrapper (the def plus `return name`).
            extra = self.level + (0 if _is_wrapper(self.open[-1].node, node) else 1)
            for f in self.open:
                f.offset += extra
        saved_level, saved_frame = self.level, self.frame_is_function
        self.level, self.frame_is_function = 0, True
        self.open.append(record)
        self.scope.append(node.name)
        self.scope.append("<locals>")
        self.visit_all(node.body)
        self.scope.pop()
        self.scope.pop()
        self.open.pop()
        self.level, self.frame_is_function = saved_level, saved_frame
        for f, offset in zip(self.open, saved_offsets, strict=True):
            f.offset = offset
        end = getattr(node, "end_lineno", None) or node.lineno
        signature = self.lines[node.lineno - 1].strip() if node.lineno <= len(self.lines) else node.name
        self.results.append(
            FunctionComplexity(qual, node.lineno, end, record.cyclomatic, record.cognitive, signature)
        )

    def _class(self, node: ast.AST) -> None:
        assert isinstance(node, ast.ClassDef)
        saved_offsets = [f.offset for f in self.open]
        for f in self.open:
            f.offset = 0  # Sonar: a class starts a fresh nesting stack at level 0
        saved_level, saved_frame = self.level, self.frame_is_function
        self.level, self.frame_is_function = 0, False
        self.scope.append(node.name)
        self.visit_all(node.body)
        self.scope.pop()
        self.level, self.frame_is_function = saved_level, saved_frame
        for f, offset in zip(self.open, saved_offsets, strict=True):
            f.offset = offset

    # -- statements -------------------------------------------------------------------------------

    def _if(self, node: ast.AST, elif_: bool = False) -> None:
        assert isinstance(node, ast.If)
        self.decision()
        if elif_:
            self.flat()
        else:
            self.structural()
        self.visit(node.test)
        self.nested(node.body)
        orelse = node.orelse
        if not orelse:
            return
        first = orelse[0]
        if len(orelse) == 1 and isinstance(first, ast.If) and self._is_elif(first):
            self._if(first, elif_=True)
        else:
            self.flat()  # else
            self.nested(orelse)

    def _is_elif(self, node: ast.If) -> bool:
        line = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        return line[node.col_offset : node.col_offset + 4] == "elif" or line.lstrip().startswith("elif")

    def _loop(self, node: ast.AST) -> None:
        assert isinstance(node, ast.For | ast.AsyncFor | ast.While)
        self.decision(1 + (1 if node.orelse else 0))
        self.structural()
        if isinstance(node, ast.While):
            self.visit(node.test)
        else:
            self.visit(node.target)
            self.visit(node.iter)
        self.nested(node.body)
        if node.orelse:
            self.flat()
            self.nested(node.orelse)

    def _try(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Try | ast.TryStar)
        self.decision(len(node.handlers) + (1 if node.orelse else 0))
        self.visit_all(node.body)  # a try body does not nest
        for handler in node.handlers:
            self.structural()
            if handler.type is not None:
                self.visit(handler.type)
            self.nested(handler.body)
        if node.orelse:
            self.flat()
            self.nested(node.orelse)
        self.visit_all(node.finalbody)

    def _match(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Match)
        wildcard = any(getattr(c.pattern, "pattern", False) is None for c in node.cases)
        self.decision(max(0, len(node.cases) - wildcard))
        self.structural()
        self.visit(node.subject)
        self.level += 1
        for case in node.cases:
            if case.guard is not None:
                self.visit(case.guard)
            self.visit_all(case.body)
        self.level -= 1

    def _assert(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Assert)
        self.decision()
        self.visit(node.test)
        if node.msg is not None:
            self.visit(node.msg)

    # -- expressions ------------------------------------------------------------------------------

    def _boolop(self, node: ast.AST) -> None:
        assert isinstance(node, ast.BoolOp)
        ops: list[type] = []
        leaves: list[ast.expr] = []
        self._flatten(node, ops, leaves)
        changes = sum(1 for i, op in enumerate(ops) if i == 0 or op is not ops[i - 1])
        self.flat(changes)
        visit = self.visit
        for leaf in leaves:
            visit(leaf)

    def _flatten(self, node: ast.BoolOp, ops: list[type], leaves: list[ast.expr]) -> None:
        """Operators in source order through directly nested, unparenthesised boolean operations."""
        self.decision(len(node.values) - 1)
        op = type(node.op)
        for i, value in enumerate(node.values):
            if i:
                ops.append(op)
            if isinstance(value, ast.BoolOp) and not self._parenthesised(node, value, i):
                self._flatten(value, ops, leaves)
            else:
                leaves.append(value)

    def _parenthesised(self, parent: ast.BoolOp, child: ast.BoolOp, index: int) -> bool:
        # Python folds `a and b and c` into one node, so a like-operator child was parenthesised; for
        # an unlike child look at the source: Sonar stops flattening at parentheses.
        if type(child.op) is type(parent.op):
            return True
        if index == 0:
            return (child.lineno, child.col_offset) != (parent.lineno, parent.col_offset)
        line = self.lines[child.lineno - 1] if child.lineno <= len(self.lines) else ""
        prefix = line.encode()[: child.col_offset].decode(errors="replace").rstrip()
        return prefix.endswith("(")

    def _ifexp(self, node: ast.AST) -> None:
        assert isinstance(node, ast.IfExp)
        self.decision()
        self.structural()
        self.level += 1
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)
        self.level -= 1

    def _lambda(self, node: ast.AST) -> None:
        assert isinstance(node, ast.Lambda)
        self.level += 1  # the white paper: lambdas raise nesting without an increment of their own
        self.visit(node.body)
        self.level -= 1

    def _comprehension(self, node: ast.AST) -> None:
        assert isinstance(node, ast.comprehension)
        self.decision(1 + len(node.ifs))
        self.visit(node.target)
        self.visit(node.iter)
        for cond in node.ifs:
            self.visit(cond)


def _is_wrapper(outer: ast.AST, inner: ast.AST) -> bool:
    """Whether ``outer`` holds only ``inner`` plus ``return <name>`` statements (a decorator)."""
    body = getattr(outer, "body", [])
    return all(
        stmt is inner or (isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name)) for stmt in body
    )


def measure_tree(tree: ast.Module, lines: list[str]) -> list[FunctionComplexity]:
    """Every function's complexity in ``tree`` (parsed from ``lines``), in the order they end.

    Args:
        tree: the parsed module.
        lines: its physical source lines (used to tell ``elif`` from ``else: if`` and to spot
            parentheses the tree does not keep).
    """
    walker = _Walker(lines)
    walker.visit_all(tree.body)
    return walker.results


def measure_source(text: str) -> list[FunctionComplexity]:
    """Parse ``text`` and measure it (raises ``SyntaxError`` when it does not parse)."""
    return measure_tree(ast.parse(text), text.split("\n"))


class ComplexityMeasure:
    """The ``complexity`` measure: ``cyclomatic`` and ``cognitive`` of the worst function.

    Every function is an item, so a failing condition lists exactly the functions that break it; on
    new code only functions that contain a changed line count.
    """

    name: str = "complexity"
    metrics: tuple[str, ...] = ("cyclomatic", "cognitive")

    def compute(self, context: Context) -> Measurement:
        """Measure every function of every file that parses."""
        from buttress.quality.gate import Measurement
        from buttress.quality.model import Finding

        out = Measurement(self.name)
        cyc_items: list[tuple[float, Finding]] = []
        cog_items: list[tuple[float, Finding]] = []
        rows: list[dict[str, Any]] = []
        for a in context.measured():
            for fn in a.functions:
                new = context.touches_new(a.rel, fn.line, fn.end_line)
                props = {"function": fn.name, "cyclomatic": fn.cyclomatic, "cognitive": fn.cognitive}
                for metric, value, items in (
                    ("cyclomatic", fn.cyclomatic, cyc_items),
                    ("cognitive", fn.cognitive, cog_items),
                ):
                    items.append(
                        (
                            float(value),
                            Finding(
                                f"complexity.{metric}",
                                a.rel,
                                fn.line,
                                fn.end_line,
                                f"{fn.name} has {metric} complexity {value}",
                                "error",
                                f"{fn.name}|{fn.signature}",
                                new,
                                props,
                            ),
                        )
                    )
                rows.append({"path": a.rel, "line": fn.line, "end_line": fn.end_line, "new": new, **props})
        out.items = {"cyclomatic": cyc_items, "cognitive": cog_items}
        out.new_items = {k: [(v, f) for v, f in items if f.new] for k, items in out.items.items()}
        for metric, items in out.items.items():
            out.overall[metric] = max((v for v, _ in items), default=0.0)
            if context.new_lines is not None:
                out.new[metric] = max((v for v, f in items if f.new), default=0.0)
        rows.sort(key=lambda r: (-r["cognitive"], -r["cyclomatic"]))
        out.details["functions"] = rows
        out.details["function_count"] = len(rows)
        return out
