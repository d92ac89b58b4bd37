"""Sketch: error bounds against numpy, exact merges, serialisation, corrupt input, bad values, memory."""

from __future__ import annotations

import json
import math
import pickle
import struct
import sys
import zlib
from collections.abc import Sequence

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


def deep_size(sketch: Sketch) -> int:
    """Bytes owned by one series: the object, its count array and its own floats.

    The accuracy constants (``_p``, ``_mult``, ``_bias``) are one shared object per accuracy, not
    per series, so they are left out; the benchmark's deep size counts them anyway.
    """
    own = [sketch, sketch._counts, sketch._sum, sketch._min, sketch._max, sketch._base, sketch._top]
    return sum(sys.getsizeof(o) for o in own)


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


def test_counts_widen_past_two_bytes() -> None:
    sketch = Sketch()
    for _ in range(70_000):
        sketch.add(0.1)
    assert sketch.count == 70_000
    assert sketch.quantile(0.5) == 0.1
    again = Sketch.from_bytes(sketch.to_bytes())
    assert again.count == 70_000


def test_counts_widen_past_four_bytes() -> None:
    big = 2**32 + 5
    sketch = Sketch.from_dict({**sketch_of([0.1]).to_dict(), "counts": [big]})
    sketch.add(0.1)
    assert sketch.count == big + 1
    assert Sketch.from_bytes(sketch.to_bytes()).count == big + 1


def test_collapsing_keeps_high_quantiles_and_bounds_buckets() -> None:
    data = np.geomspace(1e-5, 3600.0, 30_000)
    sketch = sketch_of(data.tolist(), max_buckets=200)
    assert len(sketch.to_dict()["counts"]) <= 200
    assert sketch.count == 30_000
    assert_within(sketch, data, (0.9, 0.99, 0.999, 1.0))
    # The folded low end answers with the lowest kept bucket: an overestimate, never below min.
    assert sketch.quantile(0.0) >= data[0]


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


def test_full_latency_range_fits_in_four_kib() -> None:
    # One value in every bucket from 10 µs to 1 h: the widest span a latency series should have.
    sketch = sketch_of(np.geomspace(1e-5, 3600.0, 5_000).tolist())
    assert deep_size(sketch) <= 4096


def test_typical_series_takes_about_one_and_a_half_kib() -> None:
    data = np.clip(np.random.default_rng(2).lognormal(math.log(0.05), 1.0, 200_000), 1e-5, 3600)
    assert deep_size(sketch_of(data.tolist())) <= 1536


def test_max_buckets_bounds_memory_whatever_the_values() -> None:
    sketch = Sketch(max_buckets=300)
    for v in np.geomspace(1e-9, 1e300, 10_000).tolist():
        sketch.add(v)
    assert sys.getsizeof(sketch._counts) <= 300 * 2 + 100
