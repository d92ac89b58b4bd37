"""HTTP clients of the three providers, as plain async functions for resilience pipelines to wrap.

Each method makes exactly one HTTP call and raises :class:`ProviderError` for any answer that is not a
success, so a pipeline (timeout, retry, breaker, bulkhead) sees one attempt per call and decides what
happens next. 4xx answers that mean "no" rather than "broken" (an unknown token) are returned, not raised,
so they never count against the provider's breaker.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EmailClient", "IdentityClient", "ProviderError", "StorageClient"]


class ProviderError(Exception):
    """A provider answered with an error status, or could not be reached.

    Attributes:
        provider: ``"email"``, ``"storage"`` or ``"identity"``.
        status: the HTTP status, or ``None`` when no answer came.
    """

    def __init__(self, provider: str, status: int | None, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status


async def _call(http: Any, provider: str, method: str, url: str, timeout: Any, **kwargs: Any) -> Any:
    import httpx

    try:
        response = await http.request(method, url, timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise ProviderError(provider, None, f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500:
        raise ProviderError(provider, response.status_code, f"answered {response.status_code}")
    return response


class _Client:
    http: Any
    timeout: Any

    def _timeout(self) -> Any:
        return self.timeout if self.timeout is not None else self.http.timeout


class EmailClient(_Client):
    """Sends messages through the email provider."""

    def __init__(self, http: Any, base_url: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/messages"
        self.timeout: Any = None  # the client's default until the wiring sets the policy's

    async def send(self, message: dict[str, Any]) -> int:
        """Send one message; returns the provider's message id (the same id for a repeated key)."""
        response = await _call(self.http, "email", "POST", self.url, self._timeout(), json=message)
        if response.status_code >= 400:
            raise ProviderError("email", response.status_code, f"rejected the message: {response.text[:200]}")
        return int(response.json()["id"])


class StorageClient(_Client):
    """Signs object URLs through the storage provider."""

    def __init__(self, http: Any, base_url: str) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.timeout: Any = None

    async def sign(self, key: str) -> str:
        """A signed URL for object ``key``."""
        response = await _call(self.http, "storage", "GET", f"{self.base}/sign/{key}", self._timeout())
        if response.status_code >= 400:
            raise ProviderError("storage", response.status_code, f"could not sign {key!r}")
        return str(response.json()["url"])


class IdentityClient(_Client):
    """Checks bearer tokens with the identity provider."""

    def __init__(self, http: Any, base_url: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/verify"
        self.timeout: Any = None

    async def verify(self, token: str) -> dict[str, Any] | None:
        """The token's principal (``{"subject", "roles"}``), or ``None`` when the provider says no."""
        response = await _call(
            self.http, "identity", "POST", self.url, self._timeout(), json={"token": token}
        )
        if response.status_code in (401, 403):
            return None
        if response.status_code >= 400:
            raise ProviderError("identity", response.status_code, "could not check the token")
        data = response.json()
        return {"subject": data.get("subject"), "roles": data.get("roles", [])}
