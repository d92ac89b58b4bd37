"""What a dead letter is, and what a store of them must do.

A store keeps :class:`DeadLetter` items durably: :meth:`Store.put` returns only once the item would
survive a crash of the process (and of the server, for Redis with ``appendfsync always``). Replaying
uses leases, the way a queue's consumer groups do: :meth:`Store.claim` hands items to one consumer for
``lease`` seconds, :meth:`Store.ack` deletes an item its consumer finished, :meth:`Store.release` gives
it back (to the back of the queue when the replay failed). A consumer that dies holding items loses its
lease and another consumer claims them again: delivery is at least once, so handlers use the item's
``idempotency_key`` to recognise a repeat.

Stores are synchronous; :class:`~buttress.resilience.dlq.DeadLetterQueue` runs them in a worker thread
for async callers. Every failure to read or write is a :class:`~buttress.errors.StoreError`, and a store
whose file or keys are not what buttress wrote is reported as corrupt, never silently reset.
"""

from __future__ import annotations

import abc
import builtins
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from buttress.errors import StoreError

__all__ = ["DeadLetter", "ReplayReport", "Store", "StoreError", "redact"]

Kind = Literal["call", "value"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One piece of work that failed for good and must not be lost.

    Attributes:
        id: unique id (hex); also the default idempotency key.
        policy: the policy (or queue) name it failed under; stores filter by it.
        payload: the work, as JSON data. For ``kind="call"`` it is ``{"args": [...], "kwargs": {...}}``,
            the arguments of the failed call, and replay calls ``handler(*args, **kwargs)``; for
            ``kind="value"`` replay calls ``handler(payload)``.
        kind: ``"call"`` or ``"value"``.
        error_type: the qualified class name of the last error.
        error_message: the last error's message.
        attempts: attempts made so far, replays included.
        first_failure: wall-clock time of the first failure (epoch seconds).
        last_failure: wall-clock time of the latest failure.
        correlation_id: ties the item to the request or job that produced it.
        idempotency_key: handlers use it to recognise a repeated delivery.
        created: when it was dead-lettered (epoch seconds).
        replays: failed replay attempts so far.
    """

    id: str
    policy: str
    payload: Any
    kind: Kind = "value"
    error_type: str = ""
    error_message: str = ""
    attempts: int = 1
    first_failure: float = 0.0
    last_failure: float = 0.0
    correlation_id: str | None = None
    idempotency_key: str = ""
    created: float = 0.0
    replays: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the store-specific ``extra`` left out)."""
        data = asdict(self)
        data.pop("extra")
        return data

    def with_failure(self, error_type: str, error_message: str, attempts: int, at: float) -> DeadLetter:
        """A copy recording one more failed replay."""
        return replace(
            self,
            error_type=error_type,
            error_message=error_message,
            attempts=self.attempts + attempts,
            last_failure=at,
            replays=self.replays + 1,
        )


def dump_payload(payload: Any) -> str:
    """``payload`` as compact JSON, or a :class:`TypeError` that says how to fix it."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"A dead letter's payload must be JSON data (dicts, lists, str, numbers, bool, None); {exc}. "
            "Pass payload= to the DeadLetterQueue to turn the call's arguments into JSON."
        ) from None


def load_payload(text: str, where: str) -> Any:
    """Parse a stored payload; unreadable JSON means the store is corrupt."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"Dead-letter store {where} holds an unreadable payload ({exc}); it is corrupt."
        ) from None


def error_fields(error: BaseException | None) -> tuple[str, str]:
    """(qualified class name, message) of ``error``, or empty strings."""
    if error is None:
        return ("", "")
    cls = type(error)
    name = (
        cls.__qualname__
        if cls.__module__ in ("builtins", "__main__")
        else f"{cls.__module__}.{cls.__qualname__}"
    )
    return (name, str(error)[:2000])


_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def redact(url: str) -> str:
    """``url`` without a password, fit for metric labels and messages."""
    return _PASSWORD.sub(r"\1***@", url)


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """How a replay went.

    Attributes:
        replayed: items the handler finished and the store deleted.
        failed: items whose replay failed; they stay, at the back of the queue, with the new error.
        remaining: items still matching the filters after the replay.
        stopped: why the replay stopped early (an open circuit, a rate limit), or ``None``.
    """

    replayed: int
    failed: int
    remaining: int
    stopped: str | None = None


class Store(abc.ABC):
    """A durable home for dead letters (see the module docstring for the contract).

    Attributes:
        url: where the store lives, with any password redacted (the ``store`` metric label).
    """

    url: str

    @abc.abstractmethod
    def put(self, letter: DeadLetter) -> None:
        """Store ``letter`` durably; storing the same id twice keeps one copy."""

    @abc.abstractmethod
    def get(self, letter_id: str) -> DeadLetter | None:
        """The item with ``letter_id``, or ``None``."""

    @abc.abstractmethod
    def list(
        self, *, policy: str | None = None, older_than: float | None = None, limit: int | None = None
    ) -> builtins.list[DeadLetter]:
        """Items in queue order, optionally of one policy and at least ``older_than`` seconds old."""

    @abc.abstractmethod
    def count(self, policy: str | None = None) -> int:
        """How many items (of ``policy``) the store holds."""

    @abc.abstractmethod
    def oldest(self, policy: str | None = None) -> float | None:
        """The ``created`` time of the oldest item (of ``policy``), or ``None`` when there is none."""

    @abc.abstractmethod
    def policies(self) -> builtins.list[str]:
        """The policies that have items."""

    @abc.abstractmethod
    def mark(self, policy: str | None = None) -> Any:
        """A position: :meth:`claim` with ``upto=mark`` never returns items stored or moved after it."""

    @abc.abstractmethod
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
        """Lease up to ``limit`` unleased items (or items whose lease ran out) to ``consumer``."""

    @abc.abstractmethod
    def ack(self, letter: DeadLetter, consumer: str) -> bool:
        """Delete ``letter``, which ``consumer`` finished; ``False`` when its lease had passed to another."""

    @abc.abstractmethod
    def release(self, letter: DeadLetter, consumer: str, *, failed: DeadLetter | None = None) -> None:
        """End ``consumer``'s lease on ``letter``.

        With ``failed`` (the item updated by :meth:`DeadLetter.with_failure`) the item moves to the back
        of the queue carrying the new error; without, it keeps its place.
        """

    @abc.abstractmethod
    def purge(
        self, *, policy: str | None = None, older_than: float | None = None, ids: Sequence[str] | None = None
    ) -> int:
        """Delete matching items (all, of ``policy``, older than, or by id); returns how many."""

    def close(self) -> None:  # noqa: B027 - optional for stores that hold nothing open
        """Release connections and files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
