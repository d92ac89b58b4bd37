"""Sketch: error bounds against numpy, exact merges, serialisation, corrupt input, bad values, memory."""

from __future__ import annotations

import importlib.util
import json
import math
import pickle
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.telemetry.sketch import Sketch

QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999)
# Rounding in log() can put a value sitting exactly on a bucket edge into its neighbour, which costs
# at most a few ulps beyond the guarantee; the slack below is that, not extra tolerance.
EPS = 1e-12


def sketch_of(values: Sequence[float], accuracy: float = 0.01, **kwargs: float) -> Sketch:
    sketch = Sketch(accuracy, **kwargs)  # type: ignore[arg-type]
    for v in values:
        sketch.add(v)
    return sketch


def assert_within(sketch: Sketch, data: np.ndarray, qs: Sequence[float] = QUANTILES) -> None:
    """Each estimate lies within the relative accuracy of numpy's lower/higher order statistics."""
    a = sketch.relative_accuracy
    for q, est in zip(qs, sketch.quantiles(qs), strict=True):
        lo = float(np.quantile(data, q, method="lower"))
        hi = float(np.quantile(data, q, method="higher"))
        assert lo * (1 - a - EPS) <= est <= hi * (1 + a + EPS), (q, est, lo, hi)


def _load_deep_sizeof() -> Callable[[object], int]:
    """The benchmark's own deep size (benchmarks/_common.py, standard library only), so the tests and
    the published figure measure the same thing: every object reachable from the sketch, once each
    (its count array, its carry, its floats, the per-accuracy constants), classes and functions aside."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_common.py"
    spec = importlib.util.spec_from_file_location("_buttress_bench_common", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    deep_sizeof: Callable[[object], int] = module.deep_sizeof
    return deep_sizeof


deep_size = _load_deep_sizeof()


def with_counts(counts: dict[float, int], **settings: float) -> Sketch:
    """A sketch holding ``counts[v]`` samples of each value ``v``, built without that many add() calls.

    One value per bucket is added, then its bucket count is set through the public dictionary form,
    which is how large (merged, long-lived) counts arrive in practice.
    """
    values = sorted(counts)
    base = sketch_of(values, **settings).to_dict()
    scaled = [0] * len(base["counts"])
    probe = Sketch(**settings)  # type: ignore[arg-type]
    for v in values:
        key = probe._key(v)
        scaled[key - base["offset"]] += counts[v]
    total = sum(v * n for v, n in counts.items())
    return Sketch.from_dict({**base, "counts": scaled, "sum": total})


# -- accuracy --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lognormal_latencies_within_one_percent(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = np.clip(rng.lognormal(math.log(0.05), 1.0, 100_000), 1e-5, 3600.0)
    assert_within(sketch_of(data.tolist()), data)


def test_uniform_within_one_percent() -> None:
    data = np.random.default_rng(7).uniform(0.001, 2.0, 50_000)
    assert_within(sketch_of(data.tolist()), data, (0.0, 0.01, 0.1, *QUANTILES, 1.0))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(np.array([(1.01 / 0.99) ** k for k in range(-300, 300)]), id="bucket-edges"),
        pytest.param(np.array([2.0**k for k in range(-30, 12)] * 7), id="powers-of-two"),
        pytest.param(np.array([1e-6] * 9_000 + [1e6] * 1_000), id="two-points-far-apart"),
        pytest.param(np.array([0.1] * 10_000), id="all-equal"),
        pytest.param(np.geomspace(1e-5, 3600.0, 20_000)[::-1].copy(), id="decreasing-full-range"),
        pytest.param(np.array([1e-300, 1e-200, 1e300, 5e-324 * 1e16, 1.7e308]), id="float-extremes"),
    ],
)
def test_adversarial_data_within_bound(data: np.ndarray) -> None:
    # The smallest min_value, so even subnormal inputs get buckets rather than the zero bucket.
    sketch = sketch_of(data.tolist(), max_buckets=2**31, min_value=5e-324)
    assert_within(sketch, data, (0.0, 0.1, *QUANTILES, 1.0))


@pytest.mark.parametrize("accuracy", [0.05, 0.001])
def test_other_accuracies_hold_their_bound(accuracy: float) -> None:
    data = np.random.default_rng(3).lognormal(0.0, 2.0, 20_000)
    assert_within(sketch_of(data.tolist(), accuracy), data)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(min_value=1e-6, max_value=1e6), min_size=1, max_size=300),
    q=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_data_any_quantile_within_bound(values: list[float], q: float) -> None:
    # Twelve decades is wider than the default max_buckets (nine), so raise the bound: this test is
    # about the error guarantee, the collapsing tests below are about what happens past the bound.
    data = np.array(values)
    assert_within(sketch_of(values, max_buckets=2000), data, (q,))


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(min_value=1e-5, max_value=3600.0), min_size=1, max_size=300))
def test_default_bound_covers_the_latency_range(values: list[float]) -> None:
    assert_within(sketch_of(values), np.array(values), (0.0, *QUANTILES, 1.0))


def test_summary_statistics_are_exact() -> None:
    values = [0.003, 0.25, 1.5, 0.0, 7.0]
    sketch = sketch_of(values)
    assert sketch.count == 5
    assert sketch.sum == pytest.approx(sum(values), rel=1e-15)
    assert sketch.min == 0.0
    assert sketch.max == 7.0
    assert sketch.mean == pytest.approx(sum(values) / 5, rel=1e-15)


def test_empty_sketch_reads_as_nan() -> None:
    sketch = Sketch()
    assert sketch.count == 0
    assert sketch.sum == 0.0
    assert math.isnan(sketch.min)
    assert math.isnan(sketch.max)
    assert math.isnan(sketch.mean)
    assert math.isnan(sketch.quantile(0.99))
    assert list(sketch.buckets()) == []


@pytest.mark.parametrize("q", [-0.1, 1.5, math.nan])
def test_quantile_outside_unit_interval_raises(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        sketch_of([1.0]).quantile(q)


# -- what add() accepts ------------------------------------------------------------------------------


def test_zero_and_tiny_values_count_in_the_zero_bucket() -> None:
    sketch = sketch_of([0.0, -0.0, 1e-12, 0.5])
    assert sketch.zero_count == 3
    assert sketch.count == 4
    assert sketch.min == 0.0
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(0.5, rel=0.01)


def test_min_value_is_configurable() -> None:
    sketch = sketch_of([0.0005, 0.002])
    assert sketch.zero_count == 0
    coarse = Sketch(min_value=0.001)
    coarse.add(0.0005)
    coarse.add(0.002)
    assert coarse.zero_count == 1
    assert coarse.count == 2


@pytest.mark.parametrize("bad", [-1.0, -1e-300, -math.inf, math.inf, math.nan, 10**400])
def test_bad_values_raise_and_leave_the_sketch_unchanged(bad: float) -> None:
    sketch = sketch_of([0.1, 0.2])
    before = sketch.to_dict()
    with pytest.raises(ValueError, match="finite, non-negative") as info:
        sketch.add(bad)
    assert repr(bad)[:20] in str(info.value)
    assert sketch.to_dict() == before


def test_negative_value_message_points_at_the_clock() -> None:
    with pytest.raises(ValueError, match="perf_counter"):
        Sketch().add(-0.5)


@pytest.mark.parametrize("bad", ["0.5", b"1", None, [1.0], object()])
def test_non_numbers_raise_type_error(bad: object) -> None:
    sketch = sketch_of([0.1])
    before = sketch.to_dict()
    with pytest.raises(TypeError, match="number of seconds"):
        sketch.add(bad)  # type: ignore[arg-type]
    assert sketch.to_dict() == before


def test_ints_and_numpy_floats_are_accepted() -> None:
    sketch = sketch_of([1, np.float64(2.0), np.float32(3.0)])  # type: ignore[list-item]
    assert sketch.count == 3
    assert sketch.max == 3.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"relative_accuracy": 0.0}, "relative_accuracy"),
        ({"relative_accuracy": 0.9}, "relative_accuracy"),
        ({"relative_accuracy": math.nan}, "relative_accuracy"),
        ({"min_value": 0.0}, "min_value"),
        ({"min_value": math.inf}, "min_value"),
        ({"max_buckets": 1}, "max_buckets"),
        ({"max_buckets": 10.0}, "max_buckets"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Sketch(**kwargs)  # type: ignore[arg-type]


# -- growth, overflow and collapsing -------------------------------------------------------------------


def test_a_bucket_past_65535_counts_exactly_and_counts_stay_two_bytes() -> None:
    sketch = sketch_of([0.002, 5.0])
    n = 2 * 65_536 + 3  # passes the two-byte limit twice, so the carry is incremented, not just created
    for _ in range(n):
        sketch.add(0.1)
    assert sketch.count == n + 2
    assert sketch.quantile(0.5) == pytest.approx(0.1, rel=0.01)
    assert sketch.to_dict()["counts"][sketch._key(0.1) - sketch.to_dict()["offset"]] == n
    assert sketch.cumulative_counts([0.099, 0.11, math.inf]) == [1, n + 1, n + 2]
    assert [c for _, c in sketch.buckets()] == [1, n + 1, n + 2]
    # The whole array did not widen for one hot bucket: that is the memory this design saves.
    assert sketch._counts.itemsize == 2


@pytest.mark.parametrize("n", [65_535, 65_536, 65_537, 131_072])
def test_counts_at_the_carry_boundary(n: int) -> None:
    # 65 536 and 131 072 leave the two-byte part at zero: the bucket is non-empty through its carry
    # alone, which every reader (span, quantile, buckets, serialisation) must see.
    sketch = with_counts({0.1: n - 1})
    sketch.add(0.1)
    assert sketch.count == n
    assert sketch.to_dict()["counts"] == [n]
    assert list(sketch.buckets())[-1][1] == n
    assert sketch.quantiles((0.0, 1.0)) == [0.1, 0.1]
    assert Sketch.from_bytes(sketch.to_bytes()) == sketch
    sketch.add(30.0)  # a new maximum reallocates the array; the carried bucket must move with it
    assert sketch.count == n + 1
    assert sketch.quantile(0.5) == pytest.approx(0.1, rel=0.01)


def test_a_bucket_past_two_to_the_32_counts_exactly() -> None:
    big = 2**32 - 1
    sketch = with_counts({0.1: big, 0.2: 7})
    for _ in range(6):
        sketch.add(0.1)
    assert sketch.count == big + 6 + 7
    assert sketch.to_dict()["counts"][0] == big + 6
    assert sketch.quantile(0.999_999) == pytest.approx(0.1, rel=0.01)
    again = Sketch.from_bytes(sketch.to_bytes())
    assert again == sketch
    assert again.to_dict()["counts"][0] == 2**32 + 5


def test_a_bucket_stops_at_the_64_bit_limit_without_changing() -> None:
    sketch = with_counts({0.1: 2**64 - 1})
    before = sketch.to_dict()
    with pytest.raises(OverflowError, match="cannot hold"):
        sketch.add(0.1)
    assert sketch.to_dict() == before
    with pytest.raises(OverflowError, match="cannot hold"):
        sketch.merge(sketch_of([0.1]))
    assert sketch.to_dict() == before


def test_collapsing_keeps_high_quantiles_and_bounds_buckets() -> None:
    data = np.geomspace(1e-5, 3600.0, 30_000)
    sketch = sketch_of(data.tolist(), max_buckets=200)
    assert len(sketch.to_dict()["counts"]) <= 200
    assert sketch.count == 30_000
    assert_within(sketch, data, (0.9, 0.99, 0.999, 1.0))
    # The folded low end answers with the lowest kept bucket: an overestimate, never below min.
    assert sketch.quantile(0.0) >= data[0]


def test_collapsing_folds_carried_buckets_exactly() -> None:
    # Carried buckets at the low end fold into the lowest kept bucket, which carries the sum.
    values = np.geomspace(1.0, 1000.0, 60).tolist()
    counts = {v: (3 * 65_536 + 11 if i < 10 else 1) for i, v in enumerate(values)}
    sketch = with_counts(counts, max_buckets=400)
    total = sketch.count
    sketch.add(1e6)  # stretches the span past 400 buckets: the lowest fold together
    assert sketch.count == total + 1
    folded = sketch.to_dict()
    assert len(folded["counts"]) <= 400
    assert sum(folded["counts"]) == total + 1
    assert folded["counts"][0] >= 10 * (3 * 65_536 + 11)
    assert Sketch.from_bytes(sketch.to_bytes()) == sketch


def test_collapsed_sketch_keeps_counting_low_values() -> None:
    sketch = sketch_of(np.geomspace(1.0, 1000.0, 1000).tolist(), max_buckets=50)
    before = sketch.count
    sketch.add(1e-6)
    sketch.add(0.5)
    assert sketch.count == before + 2
    assert sketch.min == 1e-6
    assert len(sketch.to_dict()["counts"]) <= 50


# -- merging -----------------------------------------------------------------------------------------


def assert_same_buckets(a: Sketch, b: Sketch) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.pop("sum") == pytest.approx(db.pop("sum"), rel=1e-9)
    assert da == db


@settings(max_examples=100, deadline=None)
@given(
    shards=st.lists(
        st.lists(st.floats(min_value=0.0, max_value=1e4), max_size=60),
        min_size=1,
        max_size=6,
    )
)
def test_merging_shards_equals_the_sketch_of_the_union(shards: list[list[float]]) -> None:
    merged = Sketch()
    for shard in shards:
        merged.merge(sketch_of(shard))
    union = sketch_of([v for shard in shards for v in shard])
    assert_same_buckets(merged, union)
    assert merged == union


def test_merging_collapsed_shards_equals_the_union_in_any_order() -> None:
    rng = np.random.default_rng(11)
    shards = [rng.lognormal(mu, 2.0, 3_000).tolist() for mu in (-8.0, 0.0, 4.0)]
    union = sketch_of([v for s in shards for v in s], max_buckets=300)
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        merged = Sketch(max_buckets=300)
        for i in order:
            merged.merge(sketch_of(shards[i], max_buckets=300))
        assert_same_buckets(merged, union)


def test_merging_carried_sketches_is_exact() -> None:
    # 40 000 + 40 000 crosses the two-byte limit only in the sum; 70 000 + 70 000 carries on both sides.
    a = with_counts({0.01: 40_000, 0.1: 70_000, 1.0: 2**33 + 1})
    b = with_counts({0.01: 40_000, 0.1: 70_000, 3.0: 65_536})
    expected = with_counts({0.01: 80_000, 0.1: 140_000, 1.0: 2**33 + 1, 3.0: 65_536})
    a.merge(b)
    assert_same_buckets(a, expected)
    assert a == expected
    assert a.count == 80_000 + 140_000 + 2**33 + 1 + 65_536
    a.merge(a)
    assert a.count == 2 * (80_000 + 140_000 + 2**33 + 1 + 65_536)
    assert a.to_dict()["counts"][0] == 160_000


@settings(max_examples=100, deadline=None)
@given(
    shards=st.lists(
        st.dictionaries(
            st.sampled_from([1e-5, 0.001, 0.01, 0.0101, 0.05, 0.2, 1.0, 60.0, 3600.0]),
            st.integers(min_value=1, max_value=2**40),
            min_size=1,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_merging_large_counts_equals_their_sum(shards: list[dict[float, int]]) -> None:
    merged = Sketch()
    totals: dict[float, int] = {}
    for shard in shards:
        merged.merge(with_counts(shard))
        for v, n in shard.items():
            totals[v] = totals.get(v, 0) + n
    assert_same_buckets(merged, with_counts(totals))
    assert merged.count == sum(totals.values())


def test_merge_requires_the_same_settings() -> None:
    a = sketch_of([1.0])
    before = a.to_dict()
    with pytest.raises(ValueError, match=r"relative_accuracy 0\.01 vs 0\.02"):
        a.merge(sketch_of([1.0], 0.02))
    with pytest.raises(ValueError, match="min_value"):
        a.merge(Sketch(min_value=1e-6))
    with pytest.raises(TypeError, match="needs a Sketch"):
        a.merge([1.0])  # type: ignore[arg-type]
    assert a.to_dict() == before


def test_merge_with_itself_doubles_and_empty_is_neutral() -> None:
    a = sketch_of([0.1, 0.2, 3.0])
    a.merge(a)
    assert a.count == 6
    assert a.sum == pytest.approx(6.6)
    a.merge(Sketch())
    assert a.count == 6
    b = Sketch()
    b += a
    assert b == a


def test_copy_of_a_carried_sketch_is_independent() -> None:
    a = with_counts({0.1: 65_535, 0.2: 200_000})
    b = a.copy()
    b.add(0.1)  # carries in the copy only
    b.add(0.2)
    assert a.to_dict()["counts"][0] == 65_535
    assert b.to_dict()["counts"][0] == 65_536
    assert a.count == 265_535
    assert b.count == 265_537
    b.clear()
    assert b.count == 0
    assert b.to_dict()["counts"] == []
    assert a.count == 265_535


def test_copy_is_independent_and_clear_empties() -> None:
    a = sketch_of([0.1, 0.2])
    b = a.copy()
    b.add(5.0)
    assert a.count == 2
    assert b.count == 3
    b.clear()
    assert b.count == 0
    assert math.isnan(b.max)
    assert b.relative_accuracy == 0.01
    b.add(0.3)
    assert b.quantile(0.5) == 0.3


# -- cumulative views ----------------------------------------------------------------------------------


def test_buckets_are_a_cumulative_distribution_of_the_data() -> None:
    data = np.random.default_rng(5).lognormal(-3.0, 1.0, 5_000)
    sketch = sketch_of([0.0, *data.tolist()])
    pairs = list(sketch.buckets())
    bounds = [b for b, _ in pairs]
    counts = [c for _, c in pairs]
    assert bounds == sorted(bounds)
    assert counts == sorted(counts)
    assert counts[-1] == sketch.count
    for bound, cumulative in pairs:
        # Exactly the values below the bound (the zero value included), up to rounding at the edge.
        assert int(np.sum(data < bound * (1 - 1e-9))) + 1 <= cumulative
        assert cumulative <= int(np.sum(data < bound * (1 + 1e-9))) + 1


def test_cumulative_counts_never_overcount() -> None:
    data = np.random.default_rng(6).lognormal(-3.0, 1.0, 5_000)
    sketch = sketch_of(data.tolist())
    bounds = [0.0, 1e-12, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0, math.inf]
    got = sketch.cumulative_counts(bounds)
    gamma = 1.01 / 0.99
    for b, c in zip(bounds, got, strict=True):
        assert c <= np.sum(data <= b)
        assert c >= np.sum(data < b / gamma**2)
    assert got[-1] == sketch.count
    with pytest.raises(ValueError, match="NaN"):
        sketch.cumulative_counts([math.nan])


def test_cumulative_counts_include_the_zero_bucket() -> None:
    sketch = sketch_of([0.0, 0.0, 1.0])
    assert sketch.cumulative_counts([1e-12, 0.5, 2.0]) == [0, 2, 3]


# -- serialisation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[], [0.0], [0.1, 0.2, 0.2, 5.0], np.random.default_rng(9).lognormal(-3, 1, 2_000).tolist()],
)
def test_roundtrips(values: list[float]) -> None:
    sketch = sketch_of(values)
    assert Sketch.from_bytes(sketch.to_bytes()) == sketch
    assert Sketch.from_bytes(bytearray(sketch.to_bytes())) == sketch
    assert Sketch.from_dict(json.loads(json.dumps(sketch.to_dict()))) == sketch
    assert pickle.loads(pickle.dumps(sketch)) == sketch
    again = Sketch.from_bytes(sketch.to_bytes())
    assert again.quantiles(QUANTILES) == sketch.quantiles(QUANTILES) or not values
    assert again.to_bytes() == sketch.to_bytes()


def test_roundtrips_with_carries() -> None:
    sketch = with_counts({0.0005: 3, 0.01: 65_536, 0.1: 70_001, 2.0: 2**40 + 9})
    sketch.add(0.0)
    for encoded in (
        Sketch.from_bytes(sketch.to_bytes()),
        Sketch.from_dict(json.loads(json.dumps(sketch.to_dict()))),
        pickle.loads(pickle.dumps(sketch)),
        sketch.copy(),
    ):
        assert encoded == sketch
        assert encoded.count == sketch.count == 3 + 65_536 + 70_001 + 2**40 + 9 + 1
        assert encoded.to_bytes() == sketch.to_bytes()
        assert encoded.quantiles(QUANTILES) == sketch.quantiles(QUANTILES)
        assert list(encoded.buckets()) == list(sketch.buckets())
    # The same counts reached by add() and by loading compare equal: equality is on true counts,
    # not on how they are split between the two-byte array and the carry.
    counted = with_counts({0.1: 65_535})
    counted.add(0.1)
    assert counted == with_counts({0.1: 65_536})


# Written by the first release of the sketch code (version 1, before carries existed), whose counts
# widened the whole array: 70 000, 3 and 2**40 + 7 samples in three adjacent buckets, stored in
# eight-byte counts. The format is unchanged, so such stored sketches (the SLO store keeps them in
# SQLite) load into the carry layout with the same contents.
OLD_WIDE = bytes.fromhex(
    "4254534b010800007b14ae47e17a843f95d626e80b2e113e0d0400006affffffffffffff0300000000000000"
    "000000002fdd24068195c33f9a9999999999a93f39b4c876be9faa3f701101000000000003000000000000"
    "0007000000000100000805e5bf"
)


def test_reads_sketches_written_before_carries() -> None:
    sketch = Sketch.from_bytes(OLD_WIDE)
    assert sketch.to_dict()["counts"] == [70_000, 3, 2**40 + 7]
    assert sketch.count == 70_000 + 3 + 2**40 + 7
    assert (sketch.min, sketch.max) == (0.05, 0.052)
    assert sketch.to_bytes() == OLD_WIDE
    sketch.add(0.05)
    assert sketch.to_dict()["counts"][0] == 70_001


def test_roundtrip_keeps_settings() -> None:
    sketch = Sketch(0.02, min_value=1e-6, max_buckets=500)
    sketch.add(1.0)
    again = Sketch.from_bytes(sketch.to_bytes())
    assert (again.relative_accuracy, again.min_value, again.max_buckets) == (0.02, 1e-6, 500)


def test_binary_form_is_compact() -> None:
    data = np.clip(np.random.default_rng(1).lognormal(math.log(0.05), 1.0, 100_000), 1e-5, 3600)
    assert len(sketch_of(data.tolist()).to_bytes()) < 1200


HEADER = struct.Struct("<4sBBxx d d I q I Q d d d")


def reencode(fields: dict[str, object], counts: bytes = b"") -> bytes:
    """A sketch with arbitrary header fields and a valid checksum, to reach the semantic checks."""
    base = {
        "magic": b"BTSK",
        "version": 1,
        "itemsize": 2,
        "accuracy": 0.01,
        "min_value": 1e-9,
        "max_buckets": 1037,
        "offset": 0,
        "n": len(counts) // 2,
        "zero": 0,
        "sum": 1.0,
        "min": 1.0,
        "max": 1.0,
    }
    base.update(fields)
    body = HEADER.pack(*base.values()) + counts
    return body + struct.pack("<I", zlib.crc32(body))


GOOD = sketch_of([0.001, 0.05, 0.05, 2.0]).to_bytes()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated"),
        (b"BT", "truncated"),
        (b"NOPE" + GOOD[4:], "not a buttress sketch"),
        (b"{}", "not a buttress sketch"),
        (GOOD[:20], "truncated"),
        (GOOD[:-1], "truncated"),
        (GOOD[:-5], "truncated"),
        (GOOD + b"\0", "trailing bytes"),
        (GOOD[:-4] + bytes(4), "checksum"),
        (GOOD[:70] + bytes([GOOD[70] ^ 1]) + GOOD[71:], "checksum"),
        (reencode({"version": 2}), "unsupported sketch version 2"),
        (reencode({"itemsize": 3}), "count width"),
        (reencode({"accuracy": 2.0}), "relative_accuracy"),
        (reencode({"min_value": -1.0}), "min_value"),
        (reencode({"max_buckets": 1}, b"\1\0\1\0"), "max_buckets"),
        (reencode({"offset": 10**9}, b"\1\0"), "out of range"),
        (reencode({"min": 2.0, "max": 1.0}, b"\1\0"), "impossible min"),
        (reencode({"sum": math.nan}, b"\1\0"), "impossible min"),
        (reencode({"min": math.inf, "max": -math.inf, "sum": 0.0}, b"\1\0"), "impossible min"),
        (reencode({}), "empty sketch"),
    ],
)
def test_corrupt_bytes_raise_value_error(data: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Sketch.from_bytes(data)


def test_every_single_bit_flip_and_truncation_is_rejected() -> None:
    for i in range(len(GOOD)):
        with pytest.raises(ValueError):
            Sketch.from_bytes(GOOD[:i])
        for bit in (0, 7):
            flipped = GOOD[:i] + bytes([GOOD[i] ^ (1 << bit)]) + GOOD[i + 1 :]
            with pytest.raises(ValueError):
                Sketch.from_bytes(flipped)


def test_from_bytes_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        Sketch.from_bytes("BTSK")  # type: ignore[arg-type]


GOOD_DICT = sketch_of([0.001, 0.05, 2.0]).to_dict()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"counts": [1, -1, 1]}, "impossible count -1"),
        ({"counts": [1, True]}, r"counts\[1\] must be an integer"),
        ({"counts": "1,2"}, "counts must be a list"),
        ({"zero_count": -1}, "negative zero count"),
        ({"relative_accuracy": "0.01"}, "relative_accuracy must be a number"),
        ({"offset": 1.5}, "offset must be an integer"),
        ({"version": 9}, "unsupported sketch version"),
        ({"min": None, "max": None}, "impossible min"),
        ({"extra": 1}, r"unknown \['extra'\]"),
    ],
)
def test_corrupt_dicts_raise_value_error(change: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Sketch.from_dict({**GOOD_DICT, **change})


def test_dict_missing_field_and_non_mapping() -> None:
    partial = dict(GOOD_DICT)
    del partial["counts"]
    with pytest.raises(ValueError, match=r"missing \['counts'\]"):
        Sketch.from_dict(partial)
    with pytest.raises(ValueError, match="mapping"):
        Sketch.from_dict([1, 2])  # type: ignore[arg-type]


# -- memory ------------------------------------------------------------------------------------------


# Memory is measured with the benchmark's deep size, which counts everything reachable from the
# series: the object, its two-byte counts, its carry, its floats and the per-accuracy constants it
# shares with other series (about 400 bytes; an honest upper bound per series).


def full_range_with_ten_million() -> Sketch:
    """A series spanning 10 µs to 1 h (every bucket used) holding 10 M log-normal latencies.

    100 000 samples recorded once, merged 100 times: the counts of 10 M samples (about 60 buckets
    pass 65 535 and carry) without 10 M add() calls.
    """
    data = np.clip(np.random.default_rng(4).lognormal(math.log(0.05), 1.0, 100_000), 1e-5, 3600)
    shard = sketch_of(data.tolist())
    sketch = sketch_of(np.geomspace(1e-5, 3600.0, 5_000).tolist())
    for _ in range(100):
        sketch.merge(shard)
    return sketch


def test_full_latency_range_fits_in_four_kib() -> None:
    # One value in every bucket from 10 µs to 1 h: the widest span a latency series should have.
    sketch = sketch_of(np.geomspace(1e-5, 3600.0, 5_000).tolist())
    assert deep_size(sketch) <= 4096


def test_full_range_with_ten_million_samples_fits_in_four_kib() -> None:
    sketch = full_range_with_ten_million()
    assert sketch.count == 10_005_000
    span = sketch.to_dict()
    assert len(span["counts"]) >= 985  # 10 µs .. 1 h at 1 %
    assert sum(c > 65_535 for c in span["counts"]) >= 50  # many hot buckets carry, not just one
    assert deep_size(sketch) <= 4096
    # Recording on top of it (carrying further, through add's slow path) keeps the bound.
    for _ in range(70_000):
        sketch.add(0.05)
    assert deep_size(sketch) <= 4096


def test_full_range_with_the_most_carries_ten_million_samples_can_make() -> None:
    # The worst case for the carry: 10 M samples arranged so that as many buckets as possible
    # (10 M // 65 536 = 152) pass 65 535, spread over the whole range, every other bucket used once.
    edges = np.geomspace(1e-5, 3600.0, 5_000).tolist()
    counts = dict.fromkeys(edges, 1)
    hot = edges[:: len(edges) // 152][:152]
    for v in hot:
        counts[v] = 65_536
    counts[edges[-1]] += 10_000_000 - sum(counts.values())
    sketch = with_counts(counts)
    assert sketch.count == 10_000_000
    assert sum(c > 65_535 for c in sketch.to_dict()["counts"]) == 152
    assert deep_size(sketch) <= 4096


def test_typical_series_takes_under_two_kib() -> None:
    # About 1.5 KiB of its own plus the ~400 bytes of shared constants the deep size also counts.
    data = np.clip(np.random.default_rng(2).lognormal(math.log(0.05), 1.0, 200_000), 1e-5, 3600)
    assert deep_size(sketch_of(data.tolist())) <= 2048


def test_max_buckets_bounds_memory_whatever_the_values() -> None:
    sketch = Sketch(max_buckets=300)
    for v in np.geomspace(1e-9, 1e300, 10_000).tolist():
        sketch.add(v)
    assert sys.getsizeof(sketch._counts) <= 300 * 2 + 100
