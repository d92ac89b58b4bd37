"""`read_frame`: an entry's frame read without loading its value (what `buttress cache get` shows)."""

from __future__ import annotations

import pytest

from buttress.cache.serialize import (
    CorruptEntry,
    Envelope,
    JsonSerializer,
    PickleSerializer,
    encode,
    read_frame,
)


def test_bare_value_frame_keeps_the_payload_unloaded() -> None:
    data = encode(JsonSerializer(), {"a": 1})
    frame = read_frame(data)
    assert (frame.format, frame.serializer, frame.fresh_until, frame.delta, frame.tags) == (
        1,
        b"j",
        None,
        0.0,
        (),
    )
    assert frame.payload == b'{"a":1}'


def test_envelope_frame_with_freshness_and_tags() -> None:
    data = encode(PickleSerializer(), Envelope(object(), 1234.5, 0.25, (("events", 3), ("x", 0))))
    frame = read_frame(data)
    assert frame.serializer == b"p"
    assert (frame.fresh_until, frame.delta) == (1234.5, 0.25)
    assert frame.tags == (("events", 3), ("x", 0))
    assert frame.payload == data[len(data) - len(frame.payload) :]
    assert frame.payload.startswith(b"\x80")  # still pickled bytes: nothing was loaded

    untagged = read_frame(encode(PickleSerializer(), Envelope("v", 9.0)))
    assert (untagged.fresh_until, untagged.tags) == (9.0, ())


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "no magic byte"),
        (b"hello world", "no magic byte"),
        (b"\xb7\x09\x00p....", "unknown frame format 9"),
        (b"\xb7\x01\x01p\x00\x00", "cut short in its freshness header"),
        (b"\xb7\x01\x03p" + b"\x00" * 16 + b"\x00\x20[[", "tag block does not parse"),
        (b"\xb7\x01\x03p" + b"\x00" * 16 + b"\x00\x05[1,2]", "tag block does not parse"),
        (b"\xb7\x01\x03p" + b"\x00" * 16 + b"\x00\x09[[1,2,3]]", "tag block does not parse"),
    ],
)
def test_what_is_not_a_frame_raises_corrupt_entry(data: bytes, says: str) -> None:
    with pytest.raises(CorruptEntry, match=says):
        read_frame(data)
