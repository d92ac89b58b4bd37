"""How values cross a process boundary: serialisers and the entry envelope stored in Redis.

Every value written to a shared backend is framed so that a reader can tell buttress's entries from
anything else under the same key, and old formats from new ones::

    byte 0      0xB7 (magic)
    byte 1      frame format (1)
    byte 2      flags: 1 = freshness (fresh-until time and load duration follow), 2 = tags follow
    byte 3      serialiser id (``p`` pickle, ``j`` JSON, ``b`` raw bytes)
    [16 bytes]  fresh_until (wall-clock seconds), delta (seconds the load took), big-endian doubles
    [2 + n]     tag stamps as JSON ``[[tag, stamp], …]``, length-prefixed
    payload     the serialised value

A frame that does not parse, or was written by another serialiser, is a *miss* (counted as
``corrupt``), never an exception: a foreign writer or a half-finished deploy must not take reads down.

The default serialiser is :mod:`pickle`, which round-trips any picklable Python object. Unpickling runs
code chosen by whoever wrote the bytes, so a Redis that untrusted parties can write to must use
``serializer="json"`` (or your own :class:`Serializer`).
"""

from __future__ import annotations

import json
import pickle
import struct
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from buttress.errors import CacheError

__all__ = [
    "BytesSerializer",
    "CorruptEntry",
    "Envelope",
    "Frame",
    "JsonSerializer",
    "PickleSerializer",
    "SerializationError",
    "Serializer",
    "decode",
    "encode",
    "read_frame",
    "serializer_for",
]

MAGIC = 0xB7
FORMAT = 1
F_FRESH = 1
F_TAGS = 2
_FRESH = struct.Struct("!dd")


class SerializationError(CacheError, TypeError):
    """A value cannot be serialised; the message names its type and what to do."""


class CorruptEntry(Exception):
    """A stored entry is not a buttress frame this namespace can read (a miss on the read path).

    Raised to callers only by :func:`read_frame`, for tools that report such entries.
    """


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back. ``ident`` is one ASCII byte stored in every frame."""

    ident: bytes

    def dumps(self, value: Any) -> bytes:
        """Bytes for ``value``; raise :class:`SerializationError` naming the type when impossible."""
        ...

    def loads(self, data: bytes) -> Any:
        """The value back from ``dumps``' bytes."""
        ...


def _type_name(value: Any) -> str:
    tp = type(value)
    return tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"


class PickleSerializer:
    """Any picklable object, with the highest pickle protocol. Trusted backends only (see module doc)."""

    ident = b"p"

    def dumps(self, value: Any) -> bytes:
        """Pickle ``value``."""
        try:
            return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise SerializationError(
                f"cannot cache a value of type {_type_name(value)}: it cannot be pickled ({exc}). "
                "Cache plain data (dataclasses, dicts, lists) or pass a serializer that handles it."
            ) from None

    def loads(self, data: bytes) -> Any:
        """Unpickle ``data``."""
        return pickle.loads(data)


class JsonSerializer:
    """JSON-compatible values (dict, list, str, int, float, bool, None); safe with untrusted writers."""

    ident = b"j"

    def dumps(self, value: Any) -> bytes:
        """JSON-encode ``value`` compactly."""
        try:
            return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"cannot cache a value of type {_type_name(value)} as JSON ({exc}). "
                "Convert it to dicts and lists first, or use serializer='pickle' on a trusted Redis."
            ) from None

    def loads(self, data: bytes) -> Any:
        """Decode JSON."""
        return json.loads(data)


class BytesSerializer:
    """Values that already are ``bytes``, stored as they are."""

    ident = b"b"

    def dumps(self, value: Any) -> bytes:
        """``value`` itself, which must be bytes."""
        if type(value) is not bytes:
            raise SerializationError(
                f"serializer='bytes' stores bytes only, got a value of type {_type_name(value)}"
            )
        return value

    def loads(self, data: bytes) -> Any:
        """``data`` itself."""
        return data


_BY_NAME: dict[str, type[PickleSerializer | JsonSerializer | BytesSerializer]] = {
    "pickle": PickleSerializer,
    "json": JsonSerializer,
    "bytes": BytesSerializer,
}


def serializer_for(spec: str | Serializer) -> Serializer:
    """The serialiser named ``spec`` (``"pickle"``, ``"json"``, ``"bytes"``) or ``spec`` itself."""
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec]()
        except KeyError:
            raise CacheError(
                f"unknown serializer {spec!r}; use one of {', '.join(_BY_NAME)} or a Serializer object"
            ) from None
    if not isinstance(spec, Serializer) or len(spec.ident) != 1:
        raise CacheError("a serializer needs dumps(), loads() and a one-byte 'ident'")
    return spec


class Envelope:
    """A value with what a reader needs besides it: freshness (XFetch, serve-stale) and tag stamps.

    Namespaces that use neither store bare values; this wrapper is chosen when the namespace is built.

    Attributes:
        value: the cached value.
        fresh_until: wall-clock second after which the value is stale (``inf`` when it never is).
        delta: how long the load that produced it took, in seconds (XFetch's Δ).
        tags: ``(tag, stamp)`` pairs taken when the value was stored, or ``()``.
    """

    __slots__ = ("delta", "fresh_until", "tags", "value")

    def __init__(
        self, value: Any, fresh_until: float, delta: float = 0.0, tags: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.value = value
        self.fresh_until = fresh_until
        self.delta = delta
        self.tags = tags

    def __repr__(self) -> str:
        return (
            f"Envelope({self.value!r}, fresh_until={self.fresh_until}, delta={self.delta}, tags={self.tags})"
        )


def encode(serializer: Serializer, value: Any) -> bytes:
    """Frame ``value`` (bare or an :class:`Envelope`) for a shared backend."""
    if type(value) is not Envelope:
        return bytes((MAGIC, FORMAT, 0)) + serializer.ident + serializer.dumps(value)
    flags = F_FRESH
    parts = [b"", _FRESH.pack(value.fresh_until, value.delta)]
    if value.tags:
        flags |= F_TAGS
        tag_bytes = json.dumps([list(t) for t in value.tags], separators=(",", ":")).encode()
        parts.append(len(tag_bytes).to_bytes(2, "big") + tag_bytes)
    parts[0] = bytes((MAGIC, FORMAT, flags)) + serializer.ident
    parts.append(serializer.dumps(value.value))
    return b"".join(parts)


def decode(serializer: Serializer, data: bytes) -> Any:
    """The bare value or :class:`Envelope` framed in ``data``.

    Raises:
        CorruptEntry: for anything that is not a frame this serialiser wrote, or does not load.
    """
    if len(data) < 4 or data[0] != MAGIC or data[1] != FORMAT or data[3:4] != serializer.ident:
        raise CorruptEntry("not a buttress frame for this serializer")
    flags = data[2]
    try:
        if not flags:
            return serializer.loads(data[4:])
        pos = 4
        fresh_until, delta = _FRESH.unpack_from(data, pos)
        pos += 16
        tags: tuple[tuple[str, int], ...] = ()
        if flags & F_TAGS:
            n = int.from_bytes(data[pos : pos + 2], "big")
            tags = tuple((str(t), int(s)) for t, s in json.loads(data[pos + 2 : pos + 2 + n]))
            pos += 2 + n
        return Envelope(serializer.loads(data[pos:]), fresh_until, delta, tags)
    except Exception as exc:  # a corrupt frame can fail in any loader in any way
        raise CorruptEntry(f"entry does not load: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class Frame:
    """A stored entry's frame, read without loading its value (what :func:`read_frame` returns).

    For tools that look at entries written by any serialiser (``buttress cache get``); the cache's own
    read path is :func:`decode`.

    Attributes:
        format: the frame format number (1).
        serializer: the one-byte ident of the serialiser that wrote the payload (``b"p"``, ``b"j"``, …).
        fresh_until: wall-clock second the value is fresh until, or ``None`` for a bare value.
        delta: seconds the load that produced the value took (``0.0`` for a bare value).
        tags: ``(tag, stamp)`` pairs stored with the entry, or ``()``.
        payload: the serialised value, not loaded.
    """

    format: int
    serializer: bytes
    fresh_until: float | None
    delta: float
    tags: tuple[tuple[str, int], ...]
    payload: bytes


def read_frame(data: bytes) -> Frame:
    """The frame of ``data`` (see the module docstring) without deserialising the value.

    Args:
        data: the bytes stored under a key.

    Raises:
        CorruptEntry: when ``data`` is not a buttress frame (wrong magic byte, unknown format, or a
            header or tag block cut short), with a message saying which.
    """
    if len(data) < 4 or data[0] != MAGIC:
        raise CorruptEntry("not a buttress frame (no magic byte 0xB7 at the start)")
    if data[1] != FORMAT:
        raise CorruptEntry(f"unknown frame format {data[1]} (this buttress reads format {FORMAT})")
    flags = data[2]
    if not flags:
        return Frame(data[1], data[3:4], None, 0.0, (), data[4:])
    pos = 4
    if len(data) < pos + _FRESH.size:
        raise CorruptEntry("frame cut short in its freshness header")
    fresh_until, delta = _FRESH.unpack_from(data, pos)
    pos += _FRESH.size
    tags: tuple[tuple[str, int], ...] = ()
    if flags & F_TAGS:
        n = int.from_bytes(data[pos : pos + 2], "big")
        block = data[pos + 2 : pos + 2 + n]
        try:
            if len(block) != n:
                raise ValueError("cut short")
            tags = tuple((str(t), int(s)) for t, s in json.loads(block))
        except (ValueError, TypeError) as exc:
            raise CorruptEntry(f"frame's tag block does not parse ({exc})") from None
        pos += 2 + n
    return Frame(data[1], data[3:4], fresh_until, delta, tags, data[pos:])
