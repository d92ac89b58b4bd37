"""Cyclomatic and cognitive complexity on hand-written functions with known values.

The cognitive figures of the first group are the examples of SonarSource's white paper (G. Ann Campbell,
"Cognitive Complexity", 2018), written in Python: sumOfPrimes = 7, getWords = 1, the try/catch example
= 9, the lambda example = 2; the labelled ``continue OUT`` of sumOfPrimes becomes Python's ``for``/``else``
(the else counts +1 where the labelled jump counted +1).
"""

from __future__ import annotations

import textwrap

import pytest

from buttress.quality.complexity import measure_source


def figures(source: str) -> dict[str, tuple[int, int]]:
    return {f.name: (f.cyclomatic, f.cognitive) for f in measure_source(textwrap.dedent(source))}


WHITE_PAPER = """
def sum_of_primes(max):
    total = 0
    for i in range(1, max + 1):          # +1
        for j in range(2, i):            # +2 (nesting 1)
            if i % j == 0:               # +3 (nesting 2)
                break
        else:                            # +1 (the labelled continue)
            total += i
    return total


def get_words(number):
    match number:                        # +1
        case 1:
            return "one"
        case 2:
            return "a couple"
        case 3:
            return "a few"
        case _:
            return "lots"


def my_method(condition1, condition2):
    try:
        if condition1:                   # +1
            for i in range(10):          # +2 (nesting 1)
                while condition2:        # +3 (nesting 2)
                    pass
    except (TypeError, ValueError):      # +1
        if condition2:                   # +2 (nesting 1)
            pass


def my_method2(condition1):
    r = lambda: 1 if condition1 else 0   # +2: the lambda nests without an increment of its own
    return r
"""


def test_white_paper_examples():
    got = figures(WHITE_PAPER)
    assert got["sum_of_primes"][1] == 7
    assert got["get_words"][1] == 1
    assert got["my_method"][1] == 9
    assert got["my_method2"][1] == 2


def test_white_paper_examples_cyclomatic():
    got = figures(WHITE_PAPER)
    # 1 + for(+1, else +1) + for + if
    assert got["sum_of_primes"][0] == 5
    # 1 + three cases (a bare `case _` is the default, not a decision)
    assert got["get_words"][0] == 4
    # 1 + if + for + while + one handler + the handler's if
    assert got["my_method"][0] == 6
    # 1 + conditional expression (inside the lambda, which is not a function of its own)
    assert got["my_method2"][0] == 2


@pytest.mark.parametrize(
    ("expr", "cognitive", "cyclomatic"),
    [
        ("a and b", 1, 2),
        ("a and b and c", 1, 3),
        ("a and b or c", 2, 3),
        ("a or b and c or d", 3, 4),
        ("a and b and c or d or e and f", 3, 6),  # the white paper's `a && b && c || d || e && f`
        ("a and (b and c)", 2, 3),  # Sonar stops at parentheses; Python folds unparenthesised chains
        ("(a or b) and c", 2, 3),
        ("not (a and b)", 1, 2),
    ],
)
def test_boolean_operator_sequences(expr, cognitive, cyclomatic):
    got = figures(f"def f(a, b, c, d, e, f):\n    return {expr}\n")
    assert got["f"] == (cyclomatic, cognitive)


def test_if_elif_else_and_nesting():
    got = figures("""
        def f(a, b):
            if a == 1:          # +1
                return 1
            elif a == 2:        # +1
                return 2
            else:               # +1
                if b:           # +2 (nesting 1)
                    return 3
            return 4
    """)
    assert got["f"] == (4, 5)


def test_else_if_written_out_is_not_elif():
    got = figures("""
        def f(a, b):
            if a:               # +1
                pass
            else:               # +1
                if b:           # +2
                    pass
    """)
    assert got["f"] == (3, 4)


def test_try_else_finally_and_with():
    got = figures("""
        def f(x):
            with open(x) as fh:         # with does not nest
                try:                    # try does not nest
                    if fh:              # +1
                        pass
                except OSError:         # +1
                    pass
                except ValueError:      # +1
                    pass
                else:                   # +1
                    pass
                finally:
                    if x:               # +1 (finally does not nest)
                        pass
    """)
    # cyclomatic: 1 + if + 2 handlers + try-else + if
    assert got["f"] == (6, 5)


def test_loops_with_else_and_conditional_expression_nesting():
    got = figures("""
        def f(items):
            while items:                        # +1
                x = 1 if items[0] else 2        # +2 (nesting 1)
                for i in items:                 # +2
                    pass
                else:                           # +1
                    pass
            return x
    """)
    # cyclomatic: 1 + while + ifexp + for(+1, +1 else)
    assert got["f"] == (5, 6)


def test_comprehensions_count_for_cyclomatic_only():
    got = figures("""
        def f(rows):
            return [r for r in rows if r if r > 1]
    """)
    assert got["f"] == (4, 0)


def test_nested_function_counts_toward_outer_cognitive_only():
    got = figures("""
        def outer(a):
            if a:                       # outer +1
                def inner(b):
                    if b:               # inner +1; outer sees it at nesting 2: +3
                        return 1
                    return 0
                return inner
            return None
    """)
    assert got["outer.<locals>.inner"] == (2, 1)
    assert got["outer"] == (2, 4)


def test_decorator_wrapper_does_not_nest():
    got = figures("""
        def deco(fn):
            def wrapper(x):
                if x:               # +1 for wrapper; +1 for deco (no extra nesting: deco is a wrapper)
                    return fn(x)
                return None
            return wrapper
    """)
    assert got["deco.<locals>.wrapper"][1] == 1
    assert got["deco"][1] == 1


def test_class_resets_nesting_and_methods_are_named():
    got = figures("""
        class A:
            def m(self, x):
                if x:
                    for i in x:
                        pass
            async def n(self, y):
                async for i in y:
                    if i:
                        return i
    """)
    assert got["A.m"] == (3, 3)
    assert got["A.n"] == (3, 3)


def test_match_with_guards_and_assert():
    got = figures("""
        def f(cmd, n):
            assert n
            match cmd:
                case "go" if n > 1:
                    return 1
                case "stop":
                    return 2
                case other:
                    return 3
    """)
    # cyclomatic: 1 + assert + 3 cases (a capture pattern also matches everything, like `_`)
    assert got["f"][0] == 4
    assert got["f"][1] == 1


def test_module_level_code_is_not_a_function():
    assert figures("if x:\n    y = 1\n") == {}
