"""How the platform uses each part of buttress: caches, resilience pipelines, dead letters.

:func:`build` reads the demo's configuration (its embedded ``buttress.demo.toml`` unless the settings
name another file) and builds every part once, at startup; the request path only calls what was built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.demo.platform import Loader, Platform

__all__ = ["Wiring", "build"]


class Wiring:
    """The buttress parts one platform process uses."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def read(self, namespace: str, key: str, loader: Loader, tags: list[str]) -> Any:
        """Serve ``key`` of ``namespace`` from its cache, loading from the database on a miss."""
        return await self.platform.load(loader)

    async def invalidate(self, event: str, fields: dict[str, Any], tags: list[str]) -> None:
        """Evict every entry tagged with one of ``tags``."""

    async def signed_url(self, key: str) -> str:
        """A signed URL for ``key`` from object storage."""
        return await self.platform.storage.sign(key)

    async def send_email(self, message: dict[str, Any]) -> bool:
        """Send a confirmation now; ``False`` when it was dead-lettered for a later replay."""
        await self.platform.deliver_email(message)
        self.platform.count_email("sent")
        return True

    async def verify_token(self, token: str) -> dict[str, Any] | None:
        """The token's principal from the identity provider, or ``None``."""
        return await self.platform.identity.verify(token)

    async def close(self) -> None:
        """Stop background work."""


async def build(platform: Platform) -> Wiring:
    """Build the parts from configuration for ``platform``."""
    return Wiring(platform)
