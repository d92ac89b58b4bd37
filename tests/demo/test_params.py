"""The list endpoints' parameter parsers: canonical results, and a 400 naming the problem for bad input.

The HTTP tests (test_api.py) check that these errors reach the caller in the error format; here every
rule of the parsers is checked directly, including the ones no HTTP test reaches.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.demo.errors import ApiError
from buttress.demo.params import FieldSpec, Page, parse_filter, parse_include, parse_page, parse_sort
from buttress.demo.repository import EVENT_FIELDS, EVENT_SORTS


def _rejects(call, code: str, words: str) -> None:
    with pytest.raises(ApiError) as err:
        call()
    assert (err.value.status, err.value.code) == (400, code)
    assert words in err.value.message


def test_a_filter_becomes_sorted_field_operator_value_triples():
    raw = json.dumps({"year": {"lt": 2020, "gte": 2015}, "status": "archived", "topic": {"contains": "x"}})
    assert parse_filter(raw, EVENT_FIELDS) == (
        ("status", "eq", "archived"),
        ("topic", "contains", "x"),
        ("year", "gte", 2015),
        ("year", "lt", 2020),
    )
    assert parse_filter('{"number": {"in": [3, 1]}}', EVENT_FIELDS) == (("number", "in", (3, 1)),)
    assert parse_filter('{"status": {"ne": "open"}}', EVENT_FIELDS) == (("status", "ne", "open"),)
    assert parse_filter(None, EVENT_FIELDS) == parse_filter("  ", EVENT_FIELDS) == ()


@given(
    st.dictionaries(
        st.sampled_from(["year", "number"]),
        st.dictionaries(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), st.integers(), min_size=1),
        min_size=1,
    ),
    st.randoms(use_true_random=False),
)
def test_the_same_filter_in_any_key_order_is_the_same_cache_key(conditions, rng):
    def shuffled(d):
        items = list(d.items())
        rng.shuffle(items)
        return {k: shuffled(v) if isinstance(v, dict) else v for k, v in items}

    assert parse_filter(json.dumps(conditions), EVENT_FIELDS) == parse_filter(
        json.dumps(shuffled(conditions)), EVENT_FIELDS
    )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("x" * 2001, "longer than 2000 characters"),
        ('{"year": {}}', "filter.year: empty operator object"),
        ('{"year": {"contains": 1}}', "unknown operator 'contains'; allowed: eq, ne, gt, gte, lt, lte, in"),
        ('{"year": true}', "expected a whole number, got true"),
        ('{"year": {"in": "2019"}}', '"in" needs a non-empty list'),
        ('{"year": {"in": [2019, "2020"]}}', 'expected a whole number, got "2020"'),
        ('{"topic": 7}', "filter.topic: expected a string, got 7"),
        ('{"status": {"ne": "gone"}}', "'gone' is not one of archived, published, open"),
        (json.dumps({"topic": {"contains": "y" * 101}}), "a contains value is at most 100 characters"),
        ('{"colour": 1}', "filterable: status, year, number, topic, city"),
        ('"status"', "must be a JSON object"),
    ],
)
def test_bad_filters_are_400_naming_the_problem(raw, words):
    _rejects(lambda: parse_filter(raw, EVENT_FIELDS), "invalid_filter", words)


def test_a_contains_value_is_not_checked_against_the_choices():
    # Choices constrain equality; a substring search may ask for part of a value.
    assert parse_filter('{"status": {"contains": "arch"}}', {"status": FieldSpec("str", ("archived",))}) == (
        ("status", "contains", "arch"),
    )


def test_sort_keeps_the_order_given_with_directions():
    assert parse_sort("-year,+title, number", EVENT_SORTS, ()) == (
        ("year", True),
        ("title", False),
        ("number", False),
    )
    default = (("date", True),)
    assert parse_sort(None, EVENT_SORTS, default) is default
    assert parse_sort(" ", EVENT_SORTS, default) is default
    _rejects(lambda: parse_sort("year,-year", EVENT_SORTS, ()), "invalid_sort", "'year' given twice")


def test_include_names_only_what_the_resource_embeds():
    assert parse_include(" venue , sessions", ("venue", "sessions", "speakers")) == {"venue", "sessions"}
    assert parse_include("", ("venue",)) == frozenset()
    _rejects(
        lambda: parse_include("venue,tickets,bar", ("venue",)),
        "invalid_include",
        "unknown 'bar', 'tickets'; allowed: venue",
    )


def test_page_defaults_and_bounds():
    assert parse_page(None, "") == Page(1, 20)
    assert parse_page("3", "50").offset == 100
    assert parse_page("1", None, default_limit=5) == Page(1, 5)
    _rejects(lambda: parse_page("100001", None), "invalid_page", "page must be between 1 and 100000")
    _rejects(lambda: parse_page("1", "0"), "invalid_page", "limit must be between 1 and 100, got 0")
    _rejects(lambda: parse_page("1.5", None), "invalid_page", "page must be a whole number, got '1.5'")
