"""Clone detection on crafted files whose duplicated lines are known, and the scanner against tokenize."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from buttress.quality.duplication import (
    _regex_tokens,
    _tokenize_tokens,
    find_clones,
    new_code_density,
    scan_tokens,
)

BLOCK = """def compute_totals(orders, taxes):
    subtotal = 0
    for order in orders:
        subtotal = subtotal + order.price * order.quantity
    discount = subtotal * 0.05 if subtotal > 100 else 0
    taxed = (subtotal - discount) * (1 + taxes.rate)
    shipping = 10 if taxed < 50 else 0
    total = taxed + shipping
    report = {"subtotal": subtotal, "discount": discount}
    report["taxed"] = taxed
    report["shipping"] = shipping
    report["total"] = total
    report["count"] = len(orders)
    return report
"""
RENAMED = (
    BLOCK.replace("compute_totals", "sum_basket")
    .replace("orders", "items")
    .replace("order", "item")
    .replace("subtotal", "gross")
    .replace('"discount"', '"rebate"')
    .replace("0.05", "0.07")
)
TRICKY = '''x = rb"\\"q" + f'{a!r:>{w}}' + """multi
"line' \\" """ + ""
y = (1 +
     2) \\
    + 0x1F + 1_000.5e-3j + .5
z = """a
"""  # comment with 'quote
if a:
	pass
'''
OTHER = "".join(f"v{i} = {i}\n" for i in range(30))  # 90 tokens: too few to hold a clone


def run(files: dict[str, str], **kw):
    names = kw.pop("names", True)
    literals = kw.pop("literals", True)
    windows = [scan_tokens(rel, text, 100, names=names, literals=literals) for rel, text in files.items()]
    physical = {rel: len(text.splitlines()) for rel, text in files.items()}
    return find_clones(windows, physical, 100, kw.pop("min_lines", 10))


def test_block_has_enough_tokens_for_the_test_to_mean_something():
    assert scan_tokens("x.py", BLOCK, 100).tokens >= 100


def test_renamed_copy_is_a_clone_when_names_and_literals_are_normalised():
    files = {"a.py": "import math\n\n\n" + BLOCK, "b.py": "x = 1\n\n\n" + RENAMED, "c.py": OTHER}
    result = run(files)
    assert len(result.clones) == 1
    clone = result.clones[0]
    assert (clone.path, clone.line, clone.end_line) == ("b.py", 4, 17)
    assert (clone.original_path, clone.original_line, clone.original_end_line) == ("a.py", 4, 17)
    assert result.duplicated == {"a.py": set(range(4, 18)), "b.py": set(range(4, 18)), "c.py": set()}
    assert result.duplicated_lines == 28
    assert result.total_lines == 17 + 17 + 30
    assert result.density == pytest.approx(100 * 28 / 64)


def test_renamed_copy_is_not_a_clone_without_normalisation_but_an_exact_copy_is():
    files = {"a.py": "import math\n\n\n" + BLOCK, "b.py": "x = 1\n\n\n" + RENAMED, "c.py": "y = 2\n" + BLOCK}
    result = run(files, names=False, literals=False)
    assert [(c.path, c.line, c.end_line, c.original_path) for c in result.clones] == [("c.py", 2, 15, "a.py")]
    assert result.duplicated_lines == 28


def test_blank_and_comment_lines_inside_a_clone_count_as_duplicated_lines():
    spaced = BLOCK.replace(
        "    total = taxed + shipping\n", "    total = taxed + shipping\n\n    # a comment\n"
    )
    result = run({"a.py": spaced, "b.py": "z = 0\n" + spaced})
    assert result.duplicated["a.py"] == set(range(1, 17))
    assert result.duplicated["b.py"] == set(range(2, 18))


def test_a_block_on_fewer_than_min_lines_lines_is_not_a_clone():
    squeezed = "def f(a, b):\n    " + "; ".join(f"a{i} = b * {i} + a" for i in range(20)) + "\n" * 3
    assert scan_tokens("x.py", squeezed, 100).tokens >= 100
    result = run({"a.py": squeezed, "b.py": squeezed.replace("def f", "def g")})
    assert result.clones == []
    assert run({"a.py": squeezed, "b.py": squeezed.replace("def f", "def g")}, min_lines=2).clones


def test_a_clone_grows_past_min_tokens_and_three_copies_mark_all_three():
    long_block = BLOCK + "\n\ndef more(x):\n" + "".join(f"    x = x + {i} * x\n" for i in range(15))
    files = {"a.py": long_block, "b.py": long_block, "c.py": "w = 3\n" + long_block}
    result = run(files)
    assert {c.path for c in result.clones} == {"b.py", "c.py"}
    lines = len(long_block.splitlines())
    assert result.duplicated["a.py"] == set(range(1, lines + 1))
    assert result.duplicated["c.py"] == set(range(2, lines + 2))
    assert all(c.tokens > 150 for c in result.clones)


def test_repetition_inside_one_file_is_found_but_never_overlaps_itself():
    twice = BLOCK + "\n" + BLOCK.replace("compute_totals", "again")
    result = run({"a.py": twice})
    assert [(c.line, c.end_line, c.original_line, c.original_end_line) for c in result.clones] == [
        (16, 29, 1, 14)
    ]


def test_new_code_density_counts_changed_lines_inside_clones():
    files = {"a.py": BLOCK, "b.py": "q = 1\n" + BLOCK}
    result = run(files)
    density, dup, total = new_code_density(result, {"b.py": {1, 2, 3}, "elsewhere.py": {1}})
    assert (dup, total) == (2, 3)
    assert density == pytest.approx(200 / 3)


def _stdlib_sample() -> list[Path]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    names = [
        "tokenize.py",
        "ast.py",
        "typing.py",
        "dataclasses.py",
        "argparse.py",
        "inspect.py",
        "email/_header_value_parser.py",
        "json/decoder.py",
        "re/_parser.py",
        "string.py",
        "textwrap.py",
        "pathlib.py",
        "fractions.py",
        "decimal.py",
        "difflib.py",
        "shlex.py",
        "configparser.py",
    ]
    return [lib / n for n in names if (lib / n).is_file()]


@pytest.mark.parametrize("path", _stdlib_sample(), ids=lambda p: p.name)
def test_the_regex_scanner_yields_exactly_what_tokenize_yields(path):
    text = path.read_text(encoding="utf-8")
    fast = _regex_tokens(text)
    assert fast is not None
    assert fast == list(_tokenize_tokens(text))


def test_tricky_strings_and_continuations_agree_with_tokenize(tmp_path):
    source = tmp_path / "tricky.py"
    source.write_text(TRICKY, encoding="utf-8")
    compile(TRICKY, "tricky.py", "exec")
    assert _regex_tokens(TRICKY) == list(_tokenize_tokens(TRICKY))


def test_unknown_text_falls_back_to_tokenize():
    assert _regex_tokens("x = 1 $ 2\n") is None
