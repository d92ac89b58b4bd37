"""MemoryStore: reads, writes, TTL on the virtual clock, bounds, stats, eviction callbacks, bad input."""

from __future__ import annotations

import logging
import math
import threading

import pytest

from buttress.cache.backends.memory import MISS, READ_BUFFER, Entry, MemoryStats, MemoryStore
from buttress.cache.policy import LruPolicy, WTinyLfuPolicy
from buttress.clock import VirtualClock
from buttress.errors import ConfigError

Event = tuple[str, object, str]


def recorder() -> tuple[list[Event], object]:
    events: list[Event] = []

    def on_evict(key: str, value: object, cause: str) -> None:
        events.append((key, value, cause))

    return events, on_evict


# -- basics ---------------------------------------------------------------------------------------------


def test_get_put_and_miss() -> None:
    store = MemoryStore(10)
    assert store.get("a") is MISS
    store.put("a", 1)
    store.put("none", None)  # None is a value like any other
    assert store.get("a") == 1
    assert store.get("none") is None
    assert len(store) == 2
    assert "a" in store
    assert "b" not in store
    assert sorted(store.keys()) == ["a", "none"]
    assert sorted(store) == ["a", "none"]
    assert store.stats.hits == 2
    assert store.stats.misses == 1


def test_get_entry_is_a_snapshot_with_deadline_age_and_weight(virtual_clock: VirtualClock) -> None:
    store = MemoryStore(10, clock=virtual_clock)
    virtual_clock.advance(5)
    store.put("a", "v1", ttl=30, weight=7)
    first = store.get_entry("a")
    assert isinstance(first, Entry)
    assert (first.value, first.expires_at, first.created_at, first.weight) == ("v1", 35.0, 5.0, 7)
    virtual_clock.advance(1)
    store.put("a", "v2")
    second = store.get_entry("a")
    assert second is not None
    assert (second.value, second.expires_at, second.created_at) == ("v2", None, 6.0)
    assert first.value == "v1"  # the old snapshot did not change under its holder
    assert store.get_entry("missing") is None
    assert store.stats.hits == 2
    assert store.stats.misses == 1
    assert "Entry(key='a'" in repr(second)


def test_peek_neither_counts_nor_hides_expired(virtual_clock: VirtualClock) -> None:
    store = MemoryStore(10, clock=virtual_clock)
    store.put("a", 1, ttl=1)
    virtual_clock.advance(2)
    entry = store.peek("a")
    assert entry is not None
    assert entry.value == 1
    assert store.stats.requests == 0
    assert store.get("a") is MISS
    assert store.peek("a") is None


def test_delete_and_clear_report_explicit_evictions() -> None:
    events, on_evict = recorder()
    store = MemoryStore(10, on_evict=on_evict)  # type: ignore[arg-type]
    for key in "abc":
        store.put(key, key.upper())
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.get("a") is MISS
    store.clear()
    assert len(store) == 0
    assert store.weight == 0
    assert list(store.keys()) == []
    assert store.get("b") is MISS
    assert events == [("a", "A", "explicit"), ("b", "B", "explicit"), ("c", "C", "explicit")]
    assert store.stats.evictions_explicit == 3
    assert store.stats.evictions == 3
    store.put("d", 1)  # usable after a clear
    assert store.get("d") == 1


def test_unbounded_store_never_evicts_for_size() -> None:
    store = MemoryStore(None)
    for i in range(5_000):
        store.put(f"k{i}", i)
    for i in range(3 * READ_BUFFER):
        assert store.get(f"k{i}") == i
    assert len(store) == 5_000
    assert store.stats.evictions == 0
    assert store.delete("k1")
    store.put("k2", "again")
    store.clear()
    assert len(store) == 0


# -- TTL on the virtual clock ----------------------------------------------------------------------------


def test_entry_expires_exactly_at_its_deadline(virtual_clock: VirtualClock) -> None:
    events, on_evict = recorder()
    store = MemoryStore(100, clock=virtual_clock, on_evict=on_evict)  # type: ignore[arg-type]
    store.put("a", 1, ttl=10)
    virtual_clock.advance(9.999)
    assert store.get("a") == 1
    assert store.cleanup() == 0
    virtual_clock.advance(0.001)  # now == deadline: expired
    assert store.get("a") is MISS
    assert events == [("a", 1, "expired")]
    assert len(store) == 0
    assert store.stats.evictions_expired == 1
    assert store.stats.misses == 1


def test_cleanup_expires_through_the_timer_wheel_at_the_deadline(virtual_clock: VirtualClock) -> None:
    events, on_evict = recorder()
    store = MemoryStore(1_000, clock=virtual_clock, on_evict=on_evict)  # type: ignore[arg-type]
    ttls = {"s": 0.3, "m": 45.0, "h": 5_000.0, "d": 200_000.0}
    for key, ttl in ttls.items():
        store.put(key, key, ttl=ttl)
    store.put("forever", "x")
    for key, ttl in sorted(ttls.items(), key=lambda kv: kv[1]):
        virtual_clock.advance_to(ttl - 1e-6)
        assert store.cleanup() == 0
        assert key in store
        virtual_clock.advance_to(ttl)
        assert store.cleanup() == 1, key
        assert store.peek(key) is None  # removed, not just hidden
    assert [k for k, _, _ in events] == ["s", "m", "h", "d"]
    assert {c for _, _, c in events} == {"expired"}
    assert list(store.keys()) == ["forever"]


def test_writes_turn_the_wheel_so_expired_entries_leave_without_cleanup(virtual_clock: VirtualClock) -> None:
    store = MemoryStore(1_000, clock=virtual_clock)
    for i in range(100):
        store.put(f"old{i}", i, ttl=5)
    virtual_clock.advance(7)  # past the deadline and past the next one-second tick
    store.put("new", 0)
    assert len(store) == 1
    assert store.stats.evictions_expired == 100


def test_rewriting_a_key_replaces_its_deadline(virtual_clock: VirtualClock) -> None:
    store = MemoryStore(10, clock=virtual_clock)
    store.put("a", 1, ttl=5)
    store.put("a", 2, ttl=50)
    virtual_clock.advance(10)
    assert store.cleanup() == 0
    assert store.get("a") == 2
    store.put("a", 3)  # no ttl: never expires
    virtual_clock.advance(100)
    assert store.cleanup() == 0
    assert store.get("a") == 3


def test_keys_contains_and_delete_skip_expired(virtual_clock: VirtualClock) -> None:
    store = MemoryStore(10, clock=virtual_clock)
    store.put("a", 1, ttl=1)
    store.put("b", 2)
    virtual_clock.advance(1)
    assert list(store.keys()) == ["b"]
    assert "a" not in store
    assert store.delete("a") is False  # it had expired: removed as such, not as a delete
    assert store.stats.evictions_expired == 1
    assert store.stats.evictions_explicit == 0


def test_infinite_ttl_means_no_expiry(virtual_clock: VirtualClock) -> None:
    store = MemoryStore(10, clock=virtual_clock)
    store.put("a", 1, ttl=math.inf)
    entry = store.get_entry("a")
    assert entry is not None
    assert entry.expires_at is None


# -- bounds ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_entries_never_exceed_max_entries(policy: str) -> None:
    events, on_evict = recorder()
    store = MemoryStore(50, policy=policy, on_evict=on_evict)  # type: ignore[arg-type]
    for i in range(2_000):
        store.put(f"k{i % 300}", i)
        store.get(f"k{(i * 7) % 300}")
        assert len(store) <= 50
    assert store.stats.evictions_size == len([e for e in events if e[2] == "size"]) > 0


@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_weight_never_exceeds_max_bytes(policy: str) -> None:
    store = MemoryStore(None, max_bytes=1_000, policy=policy)
    for i in range(3_000):
        store.put(f"k{i % 400}", i, weight=1 + (i * 37) % 90)
        assert store.weight <= 1_000
    assert store.weight == sum(e.weight for k in store if (e := store.peek(k)) is not None)


@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_both_bounds_hold_at_once(policy: str) -> None:
    store = MemoryStore(20, max_bytes=500, policy=policy)
    for i in range(1_000):
        store.put(f"k{i % 97}", i, weight=1 if i % 3 else 60)
        assert len(store) <= 20
        assert store.weight <= 500


def test_an_entry_heavier_than_the_whole_cache_is_evicted_at_once() -> None:
    events, on_evict = recorder()
    store = MemoryStore(None, max_bytes=100, on_evict=on_evict)  # type: ignore[arg-type]
    store.put("small", 1, weight=10)
    store.put("huge", 2, weight=101)
    assert store.get("huge") is MISS
    assert store.get("small") == 1
    assert events == [("huge", 2, "size")]


def test_replacing_with_a_heavier_value_evicts_to_fit() -> None:
    store = MemoryStore(None, max_bytes=100, policy="lru")
    for i in range(10):
        store.put(f"k{i}", i, weight=10)
    store.put("k9", "big", weight=40)
    assert store.weight <= 100
    assert store.get("k9") == "big"
    assert len(store) == 7


def test_policies_are_chosen_by_name() -> None:
    assert isinstance(MemoryStore(10).policy, WTinyLfuPolicy)
    assert isinstance(MemoryStore(10, policy="lru").policy, LruPolicy)
    assert "policy='lru'" in repr(MemoryStore(10, policy="lru"))


# -- stats ----------------------------------------------------------------------------------------------


def test_stats_count_every_outcome(virtual_clock: VirtualClock) -> None:
    store = MemoryStore(2, clock=virtual_clock)
    for _ in range(3):
        store.get("a")
    store.put("a", 1, ttl=1)
    store.get("a")
    store.put("b", 2)
    store.get("b")
    store.get("b")  # b is now the more popular
    store.put("c", 3)  # over capacity: c is refused (less popular than the victim)…
    store.delete("b")
    virtual_clock.advance(2)
    store.cleanup()
    stats = store.stats
    assert stats.hits == 3
    assert stats.misses == 3
    assert stats.hit_rate == 0.5
    assert stats.evictions_size == 1
    assert stats.admissions_rejected == 1
    assert stats.evictions_explicit == 1
    assert stats.evictions_expired == 1
    assert stats.snapshot() == {
        "admissions_rejected": 1,
        "evictions_expired": 1,
        "evictions_explicit": 1,
        "evictions_size": 1,
        "hits": 3,
        "misses": 3,
    }
    assert "hits=3" in repr(stats)
    stats.reset()
    assert stats.requests == 0
    assert stats.hit_rate == 0.0
    assert MemoryStats().evictions == 0


# -- eviction callbacks -----------------------------------------------------------------------------------


def test_on_evict_gets_each_cause() -> None:
    clock = VirtualClock()
    events, on_evict = recorder()
    store = MemoryStore(2, policy="lru", clock=clock, on_evict=on_evict)  # type: ignore[arg-type]
    store.put("a", 1, ttl=5)
    store.put("b", 2)
    store.put("c", 3)  # evicts a (LRU)
    store.delete("b")
    store.put("d", 4, ttl=1)
    clock.advance(1)
    store.cleanup()
    assert events == [("a", 1, "size"), ("b", 2, "explicit"), ("d", 4, "expired")]
    store.put("c", 30)  # replacing is not an eviction
    assert len(events) == 3


def test_on_evict_may_use_the_store() -> None:
    store: MemoryStore

    def on_evict(key: str, value: object, cause: str) -> None:
        # Runs after the lock is released: reading and writing the store from here must not deadlock.
        # (Re-putting only first-time evictions keeps the chain finite: each re-put evicts another key.)
        if cause == "size" and not key.startswith("evicted:"):
            store.put(f"evicted:{key}", value)
            store.get(key)

    store = MemoryStore(3, policy="lru", on_evict=on_evict)
    for i in range(10):
        store.put(f"k{i}", i)
    assert len(store) == 3


def test_a_failing_callback_is_logged_and_does_not_disturb_the_store(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def on_evict(key: str, value: object, cause: str) -> None:
        raise RuntimeError("boom")

    store = MemoryStore(1, policy="lru", on_evict=on_evict)
    with caplog.at_level(logging.ERROR, logger="buttress.cache"):
        store.put("a", 1)
        store.put("b", 2)  # evicts a; the callback raises
    assert store.get("b") == 2
    assert len(store) == 1
    assert "on_evict('a'" in caplog.text
    assert "boom" in caplog.text


# -- the read buffer --------------------------------------------------------------------------------------


def test_reads_are_replayed_at_the_next_write_and_the_buffer_is_bounded() -> None:
    store = MemoryStore(3, policy="lru")
    for key in "abc":
        store.put(key, key)
    policy = store.policy
    assert isinstance(policy, LruPolicy)
    assert policy.keys_in_order() == ["a", "b", "c"]
    store.get("a")
    assert policy.keys_in_order() == ["a", "b", "c"]  # buffered: the hit did no policy work
    assert store.cleanup() == 0  # maintenance replays the buffer
    assert policy.keys_in_order() == ["b", "c", "a"]
    # A burst of reads longer than the buffer: the first READ_BUFFER are kept, the rest not recorded.
    for _ in range(READ_BUFFER):
        store.get("b")
    store.get("c")  # beyond the buffer: counted as a hit, not recorded for the policy
    assert store.stats.hits == 1 + READ_BUFFER + 1
    store.put("d", "d")  # replays the buffered reads (b used last), then evicts the LRU: c
    assert policy.keys_in_order() == ["a", "b", "d"]


def test_concurrent_readers_and_writers_keep_the_store_consistent() -> None:
    store = MemoryStore(200)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(4_000):
                key = f"k{(i * seed) % 600}"
                if store.get(key) is MISS:
                    store.put(key, i)
                if i % 97 == 0:
                    store.delete(key)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in (1, 3, 7, 11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store.cleanup()
    assert len(store) <= 200
    policy = store.policy
    assert isinstance(policy, WTinyLfuPolicy)
    window, probation, protected = policy.regions()
    assert sorted(window + probation + protected) == sorted(store.keys())


# -- bad input ------------------------------------------------------------------------------------------


def test_bad_constructor_arguments_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        MemoryStore(0, max_bytes=-5, policy="fifo", on_evict="nope")  # type: ignore[arg-type]
    text = str(info.value)
    assert "4 problems" in text
    for fragment in (
        "max_entries: must be a positive int",
        "max_bytes:",
        "policy: must be one of 'tinylfu', 'lru'",
        "on_evict: must be a callable",
    ):
        assert fragment in text
    with pytest.raises(ConfigError, match="max_entries"):
        MemoryStore(True)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), -math.inf])
def test_bad_ttl_is_refused_with_the_fix(ttl: float) -> None:
    store = MemoryStore(10)
    with pytest.raises(ValueError, match=r"ttl=.*must be a positive number of seconds, or None"):
        store.put("a", 1, ttl=ttl)
    assert len(store) == 0


@pytest.mark.parametrize("weight", [0, -3, 1.5, "10", True])
def test_bad_weight_is_refused_with_the_fix(weight: object) -> None:
    store = MemoryStore(10)
    with pytest.raises(ValueError, match=r"weight=.*must be a positive int"):
        store.put("a", 1, weight=weight)  # type: ignore[arg-type]
    assert len(store) == 0
