"""Cache keys: namespace prefixes, key templates for ``@cached``, and keys Redis can always hold.

A namespace's backend key is ``<prefix>:<namespace>:<version>:<fingerprint>:<key>``, built once when the
namespace is built (the prefix includes the version, so a new version reads nothing the old one wrote and
needs no flush). In-process namespaces skip the prefix entirely: each one has its own store.

Redis accepts any bytes as a key, but keys that are long or hold whitespace and control characters are
trouble for tooling (``redis-cli``, ``MONITOR``, key-space notifications) and memory. A key whose final
form is longer than :data:`MAX_KEY_BYTES` bytes, or that holds a character outside printable ASCII
without space, is therefore replaced by ``<readable head>#<blake2b-128 hex>``: still unique (128 bits),
still recognisable in ``SCAN`` output, and never more than ``MAX_KEY_BYTES`` long.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import string
from collections.abc import Callable, Hashable
from typing import Any

from buttress.errors import CacheError

__all__ = ["MAX_KEY_BYTES", "CacheKeyError", "KeyTemplate", "namespace_prefix", "safe_key"]

#: Longest key sent to Redis as-is; longer keys are hashed (see the module docstring).
MAX_KEY_BYTES = 200
_SAFE = re.compile(r"[!-~]*")  # printable ASCII, no space
_HEAD = 48


class CacheKeyError(CacheError, ValueError):
    """A key or key template cannot be used (wrong type, unknown field in a template)."""


def safe_key(prefix: str, key: str) -> str:
    """``prefix + key`` when Redis-friendly, else the prefix, a readable head and a 128-bit hash of ``key``.

    Args:
        prefix: the namespace prefix (already safe; see :func:`namespace_prefix`); always kept whole so
            ``SCAN MATCH prefix*`` finds hashed keys too.
        key: the caller's key.

    Raises:
        CacheKeyError: when ``key`` is not a string.
    """
    if type(key) is not str:
        raise CacheKeyError(
            f"cache keys for a Redis-backed namespace must be str, got {type(key).__name__}: "
            "format the key into a string (e.g. f'event:{code}')"
        )
    full = prefix + key
    if len(full) <= MAX_KEY_BYTES and full.isascii() and full.isprintable() and " " not in full:
        return full
    data = key.encode("utf-8", "surrogatepass")
    head = "".join(c if "!" <= c <= "~" and c != "#" else "_" for c in key[:_HEAD])
    return f"{prefix}{head}#{hashlib.blake2b(data, digest_size=16).hexdigest()}"


def namespace_prefix(prefix: str, namespace: str, version: str, fingerprint: str) -> str:
    """The key prefix of a namespace in a shared backend: ``prefix:namespace:version:fingerprint:``."""
    for what, value in (("prefix", prefix), ("namespace", namespace), ("version", version)):
        if not value or _SAFE.fullmatch(value) is None or ":" in value:
            raise CacheKeyError(
                f"cache {what} {value!r} must be non-empty printable ASCII without spaces or ':'"
            )
    return f"{prefix}:{namespace}:{version}:{fingerprint or '-'}:"


class KeyTemplate:
    """A key template such as ``"event:{code}"`` filled from a function's arguments.

    The function's signature is read once; each call maps positional arguments to their names with a
    ``zip`` and formats the template, without :meth:`inspect.Signature.bind` (which costs microseconds).
    With no template, the key is the function's qualified name and its arguments joined with ``:``.

    Args:
        template: a :meth:`str.format` template naming the function's parameters, or ``None``.
        fn: the function whose arguments fill the template.

    Raises:
        CacheKeyError: when the template names a field the function does not have.
    """

    __slots__ = ("_defaults", "_fields", "_names", "_prefix", "_template", "build")

    def __init__(self, template: str | None, fn: Callable[..., Any]) -> None:
        sig = inspect.signature(fn)
        params = [
            p
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        self._names = tuple(p.name for p in params if p.kind is not p.KEYWORD_ONLY)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self._template = template
        self._prefix = f"{fn.__module__}.{fn.__qualname__}"
        if template is None:
            self._fields: tuple[str, ...] = ()
            self.build: Callable[[tuple[Any, ...], dict[str, Any]], str] = self._build_default
            return
        fields = []
        for _, name, _, _ in string.Formatter().parse(template):
            if name is None:
                continue
            root = re.split(r"[.\[]", name, maxsplit=1)[0]
            if not root or root.isdigit():
                raise CacheKeyError(f"key template {template!r} must name parameters, e.g. 'event:{{code}}'")
            if root not in sig.parameters:
                raise CacheKeyError(
                    f"key template {template!r} names {{{root}}}, but {fn.__qualname__}() has no parameter "
                    f"{root!r}; its parameters are {', '.join(sig.parameters) or 'none'}"
                )
            fields.append(root)
        self._fields = tuple(fields)
        self.build = self._build_template

    def _build_template(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        values = dict(self._defaults)
        values.update(zip(self._names, args, strict=False))
        if kwargs:
            values.update(kwargs)
        assert self._template is not None
        return self._template.format_map(values)

    def _build_default(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        parts = [self._prefix, *map(str, args)]
        if kwargs:
            parts.extend(f"{k}={kwargs[k]}" for k in sorted(kwargs))
        return ":".join(parts)


def check_hashable(key: object) -> Hashable:
    """``key`` if it can be a dictionary key, else a :class:`CacheKeyError` naming its type."""
    try:
        hash(key)
    except TypeError:
        raise CacheKeyError(
            f"cache keys must be hashable, got {type(key).__name__}; use a str or a tuple"
        ) from None
    return key
