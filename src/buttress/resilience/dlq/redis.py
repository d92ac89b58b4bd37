"""Dead letters in Redis Streams, for many processes and machines (the ``redis`` extra).

Each policy's items are one stream, ``{buttress:dlq}:stream:<policy>``; replayers read it through the
consumer group ``replay``, so an item is leased to one consumer at a time. An item held by a consumer that
died is claimed again with ``XAUTOCLAIM`` once it has been idle for the lease time. Keys share one hash tag,
so the store works on Redis Cluster, and every change is a Lua script: atomic, and idempotent so that a
command retried after a dropped connection does not store or move an item twice. An index hash maps each
item's id to its stream entry.

Durability is the server's: run Redis with ``appendonly yes`` and ``appendfsync always`` and an item is on
disk before :meth:`RedisStore.put` returns. With weaker settings a crash of the Redis server can lose the
last second of items; buttress cannot tell from the client, so the requirement is documented, not checked.

Ages come from stream ids, which Redis stamps with its own clock: ``older_than`` is measured against the
server's time.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any, Final

from buttress._extras import require
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import StoreError
from buttress.resilience.dlq.base import DeadLetter, Store, dump_payload, load_payload, redact

__all__ = ["RedisStore"]

GROUP: Final = "replay"
RELEASED: Final = "(released)"
# Idle time given to released entries so the next XAUTOCLAIM takes them at once (ms, about 31 years).
_LONG_IDLE: Final = 10**12

# KEYS: stream, index, policies. ARGV: letter id, policy, then field/value pairs.
_PUT: Final = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], 'replay', '0', 'MKSTREAM')
local sid = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '\\n' .. sid)
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# The consumer that holds stream entry ARGV[sid] in the group, or false.
_OWNER: Final = """
local function owner(stream, sid)
  local p = redis.call('XPENDING', stream, 'replay', sid, sid, 1)
  if p[1] then return p[1][2] end
  return false
end
"""

# KEYS: stream, index. ARGV: letter id, stream id, consumer.
_ACK: Final = (
    _OWNER
    + """
if owner(KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], 'replay', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""
)

# KEYS: stream. ARGV: stream id, consumer, released consumer, idle ms.
_RELEASE: Final = (
    _OWNER
    + """
if owner(KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], 'replay', ARGV[3], 0, ARGV[1], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""
)

# KEYS: stream, index. ARGV: letter id, stream id, consumer, policy, then field/value pairs.
_MOVE_BACK: Final = (
    _OWNER
    + """
if owner(KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
local sid = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
redis.call('XACK', KEYS[1], 'replay', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. '\\n' .. sid)
return 1
"""
)

# KEYS: stream, index. ARGV: letter id, stream id.
_DELETE: Final = """
redis.call('XACK', KEYS[1], 'replay', ARGV[2])
local n = redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
"""

_FIELDS: Final = (
    "id",
    "policy",
    "kind",
    "payload",
    "error_type",
    "error_message",
    "attempts",
    "first_failure",
    "last_failure",
    "idempotency_key",
    "created",
    "replays",
)


def _sid(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return (int(ms), int(seq or 0))


def _bound(upto: Any, policy: str, cutoff: str | None) -> str | None:
    """The last stream id a replay may claim from ``policy``: its mark, or the age cutoff when earlier."""
    bound = upto if isinstance(upto, str) else upto.get(policy) if isinstance(upto, dict) else None
    if cutoff is not None and (bound is None or _sid(cutoff) < _sid(bound)):
        return cutoff
    return bound


class _Claimed:
    """Entries claimed from one stream, split at the replay's bound.

    Entries up to the bound become letters for this replay; those past it (added after the replay
    started, or too young) are collected to be handed back.
    """

    __slots__ = ("beyond", "bound", "got", "letter")

    def __init__(self, bound: str | None, letter: Callable[[str, dict[str, str]], DeadLetter]) -> None:
        self.bound = None if bound is None else _sid(bound)
        self.letter = letter
        self.got: list[DeadLetter] = []
        self.beyond: list[str] = []

    def keep(self, entries: list[Any]) -> None:
        """Sort ``(id, fields)`` pairs from a claim or a read into :attr:`got` and :attr:`beyond`."""
        for sid, fields in entries:
            if fields is None:
                continue  # deleted while pending
            if self.bound is not None and _sid(sid) > self.bound:
                self.beyond.append(sid)
            else:
                self.got.append(self.letter(sid, fields))


class RedisStore(Store):
    """Dead letters in Redis Streams (see the module docstring).

    Args:
        url: a ``redis://`` (or ``rediss://``, ``unix://``) URL.
        prefix: the key prefix; keep the braces, they are the Cluster hash tag.
        client: a ready ``redis.Redis`` client to use instead of building one from ``url``.
        clock: wall-clock source for item timestamps.
        socket_timeout: seconds before a command is considered lost (it is then retried).
        retries: how many times a command that lost its connection is retried, with exponential backoff
            (up to 1 s apart), before the store reports a :class:`~buttress.errors.StoreError`. Retrying is
            safe: every change is idempotent.

    Raises:
        ImportError: when the ``redis`` extra is missing.
        StoreError: when the server cannot be reached or its keys are not what buttress wrote.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        prefix: str = "{buttress:dlq}",
        client: Any = None,
        clock: Clock = SYSTEM_CLOCK,
        socket_timeout: float = 5.0,
        retries: int = 8,
    ) -> None:
        redis = require("redis", "redis")
        self.url = redact(url)
        self._prefix = prefix
        self._time = clock.time
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        if client is None:
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
                health_check_interval=30,
            )
        self._redis = client
        self._index = f"{prefix}:index"
        self._policies = f"{prefix}:policies"
        self._put = client.register_script(_PUT)
        self._ack = client.register_script(_ACK)
        self._release = client.register_script(_RELEASE)
        self._move_back = client.register_script(_MOVE_BACK)
        self._delete = client.register_script(_DELETE)
        self._run(client.ping)

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    # -- plumbing ------------------------------------------------------------------------------------

    def _stream(self, policy: str) -> str:
        return f"{self._prefix}:stream:{policy}"

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            if "WRONGTYPE" in str(exc):
                raise StoreError(
                    f"Dead-letter store {self.url} has keys under {self._prefix} that buttress did not write "
                    f"({exc}); it is corrupt or shared with another program. Nothing was changed."
                ) from None
            raise StoreError(f"Dead-letter store {self.url} failed: {exc}.") from exc

    def _fields(self, letter: DeadLetter) -> builtins.list[str]:
        values = {
            "id": letter.id,
            "policy": letter.policy,
            "kind": letter.kind,
            "payload": dump_payload(letter.payload),
            "error_type": letter.error_type,
            "error_message": letter.error_message,
            "attempts": str(letter.attempts),
            "first_failure": repr(letter.first_failure),
            "last_failure": repr(letter.last_failure),
            "idempotency_key": letter.idempotency_key,
            "created": repr(letter.created),
            "replays": str(letter.replays),
        }
        flat: builtins.list[str] = []
        for key, value in values.items():
            flat += [key, value]
        if letter.correlation_id is not None:
            flat += ["correlation_id", letter.correlation_id]
        return flat

    def _letter(self, sid: str, fields: dict[str, str]) -> DeadLetter:
        try:
            return DeadLetter(
                id=fields["id"],
                policy=fields["policy"],
                payload=load_payload(fields["payload"], self.url),
                kind=fields["kind"],  # type: ignore[arg-type]
                error_type=fields["error_type"],
                error_message=fields["error_message"],
                attempts=int(fields["attempts"]),
                first_failure=float(fields["first_failure"]),
                last_failure=float(fields["last_failure"]),
                correlation_id=fields.get("correlation_id"),
                idempotency_key=fields["idempotency_key"],
                created=float(fields["created"]),
                replays=int(fields["replays"]),
                extra={"stream_id": sid},
            )
        except (KeyError, ValueError) as exc:
            raise StoreError(
                f"Dead-letter store {self.url} holds an entry {sid} that buttress did not write "
                f"(missing or bad field {exc}); it is corrupt."
            ) from None

    def _all_policies(self, policy: str | None) -> builtins.list[str]:
        if policy is not None:
            return [policy]
        return sorted(self._run(self._redis.smembers, self._policies))

    def _server_ms(self) -> int:
        seconds, micros = self._run(self._redis.time)
        return int(seconds) * 1000 + int(micros) // 1000

    def _cutoff(self, older_than: float | None) -> str | None:
        if older_than is None:
            return None
        return f"{self._server_ms() - int(older_than * 1000)}-{2**64 - 1}"

    # -- Store ---------------------------------------------------------------------------------------

    def put(self, letter: DeadLetter) -> None:
        """Append ``letter`` to its policy's stream (a repeated id is ignored)."""
        keys = [self._stream(letter.policy), self._index, self._policies]
        args = [letter.id, letter.policy, *self._fields(letter)]
        self._run(self._put, keys=keys, args=args)

    def get(self, letter_id: str) -> DeadLetter | None:
        """The item with ``letter_id``."""
        where = self._run(self._redis.hget, self._index, letter_id)
        if where is None:
            return None
        policy, _, sid = where.partition("\n")
        entries = self._run(self._redis.xrange, self._stream(policy), sid, sid)
        return self._letter(*entries[0]) if entries else None

    def list(
        self, *, policy: str | None = None, older_than: float | None = None, limit: int | None = None
    ) -> builtins.list[DeadLetter]:
        """Items in stream order (ordered by dead-letter time across policies)."""
        upper = self._cutoff(older_than) or "+"
        out: builtins.list[DeadLetter] = []
        for name in self._all_policies(policy):
            stream = self._stream(name)
            entries = self._run(self._redis.xrange, stream, "-", upper, count=limit)
            out += [self._letter(sid, fields) for sid, fields in entries]
        if policy is None:
            out.sort(key=lambda item: item.created)
        return out if limit is None else out[:limit]

    def count(self, policy: str | None = None) -> int:
        """Items in the stream(s)."""
        return sum(
            int(self._run(self._redis.xlen, self._stream(name))) for name in self._all_policies(policy)
        )

    def oldest(self, policy: str | None = None) -> float | None:
        """The oldest item's ``created`` time."""
        times = []
        for name in self._all_policies(policy):
            entries = self._run(self._redis.xrange, self._stream(name), "-", "+", count=1)
            if entries:
                times.append(self._letter(*entries[0]).created)
        return min(times) if times else None

    def policies(self) -> builtins.list[str]:
        """Policies with items."""
        return [name for name in self._all_policies(None) if self.count(name)]

    def mark(self, policy: str | None = None) -> Any:
        """The last stream id of ``policy`` (or of every policy, as a dict)."""
        marks = {}
        for name in self._all_policies(policy):
            last = self._run(self._redis.xrevrange, self._stream(name), "+", "-", count=1)
            marks[name] = last[0][0] if last else "0-0"
        return marks[policy] if policy is not None else marks

    def claim(
        self,
        consumer: str,
        *,
        policy: str | None = None,
        older_than: float | None = None,
        upto: Any = None,
        limit: int = 10,
        lease: float = 300.0,
    ) -> builtins.list[DeadLetter]:
        """Lease items: first those whose lease ran out (``XAUTOCLAIM``), then new ones (``XREADGROUP``)."""
        cutoff = self._cutoff(older_than)
        out: builtins.list[DeadLetter] = []
        for name in self._all_policies(policy):
            if len(out) >= limit:
                break
            bound = _bound(upto, name, cutoff)
            out += self._claim_stream(name, consumer, bound, limit - len(out), int(lease * 1000))
        return out

    def _claim_stream(
        self, policy: str, consumer: str, bound: str | None, limit: int, lease_ms: int
    ) -> builtins.list[DeadLetter]:
        stream = self._stream(policy)
        claimed = _Claimed(bound, self._letter)
        self._claim_expired(stream, consumer, lease_ms, limit, claimed)
        if len(claimed.got) < limit:
            claimed.keep(self._read_new(stream, consumer, limit - len(claimed.got)))
        for sid in claimed.beyond:  # past the replay's mark: hand back, claimable at once by the next replay
            self._run(self._release, keys=[stream], args=[sid, consumer, RELEASED, _LONG_IDLE])
        return sorted(claimed.got, key=lambda item: _sid(item.extra["stream_id"]))

    def _claim_expired(
        self, stream: str, consumer: str, lease_ms: int, limit: int, claimed: _Claimed
    ) -> None:
        """Take over entries whose lease ran out, page by page, until ``limit`` or the end of the stream."""
        start = "0-0"
        while len(claimed.got) < limit:
            count = limit - len(claimed.got)
            reply = self._in_group(
                ["0-0", []], self._redis.xautoclaim, stream, GROUP, consumer, lease_ms, start, count=count
            )
            claimed.keep(reply[1])
            start = reply[0]
            if start == "0-0":
                break

    def _read_new(self, stream: str, consumer: str, count: int) -> builtins.list[Any]:
        """Up to ``count`` entries never delivered to any consumer, as ``(id, fields)`` pairs."""
        reply = self._in_group([], self._redis.xreadgroup, GROUP, consumer, {stream: ">"}, count=count)
        return [entry for _, entries in reply for entry in entries]

    def _in_group(self, empty: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a consumer-group command; ``empty`` when the stream has no group yet.

        The group is created with the first item put under a policy, so a missing one means that nothing
        was ever stored there: there is nothing to claim, which is not a failure of the store.
        """
        try:
            return self._run(fn, *args, **kwargs)
        except StoreError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return empty

    def ack(self, letter: DeadLetter, consumer: str) -> bool:
        """Delete ``letter`` if ``consumer`` still holds it."""
        keys = [self._stream(letter.policy), self._index]
        args = [letter.id, letter.extra["stream_id"], consumer]
        return bool(self._run(self._ack, keys=keys, args=args))

    def release(self, letter: DeadLetter, consumer: str, *, failed: DeadLetter | None = None) -> None:
        """Hand ``letter`` back; a failed one is re-added at the end of its stream with the new error."""
        stream = self._stream(letter.policy)
        sid = letter.extra["stream_id"]
        if failed is None:
            self._run(self._release, keys=[stream], args=[sid, consumer, RELEASED, _LONG_IDLE])
            return
        args = [letter.id, sid, consumer, letter.policy, *self._fields(failed)]
        self._run(self._move_back, keys=[stream, self._index], args=args)

    def purge(
        self, *, policy: str | None = None, older_than: float | None = None, ids: Sequence[str] | None = None
    ) -> int:
        """Delete matching items."""
        wanted = set(ids) if ids is not None else None
        removed = 0
        for letter in self.list(policy=policy, older_than=older_than):
            if wanted is not None and letter.id not in wanted:
                continue
            keys = [self._stream(letter.policy), self._index]
            args = [letter.id, letter.extra["stream_id"]]
            removed += int(self._run(self._delete, keys=keys, args=args))
        return removed

    def close(self) -> None:
        """Close the client's connections."""
        try:
            self._redis.close()
        except self._errors:  # pragma: no cover - closing a broken connection
            pass
