"""Registry failures, worded as Docker words them so the CLI shows familiar messages."""

from __future__ import annotations

from typing import Any

from pyjail.errors import ImageNotFound, PyjailError


class RegistryError(PyjailError):
    """The registry answered with an error (or could not be reached)."""

    status = 500


class RegistryUnauthorized(RegistryError):
    """Credentials missing or refused (HTTP 401/403 after the challenge was answered)."""

    status = 401


class ManifestUnknown(ImageNotFound):
    """The tag or digest does not exist in the repository."""


class DigestMismatch(RegistryError):
    """Downloaded bytes do not hash to the digest they were asked for: nothing is stored."""


def describe(body: Any, fallback: str) -> str:
    """``code: message`` from the distribution API's ``{"errors": [...]}`` body."""
    try:
        errs = body.get("errors") or []
        parts = [f"{str(e.get('code', '')).lower()}: {e.get('message', '')}".strip(": ")
                 for e in errs]
        if parts:
            return "; ".join(parts)
    except AttributeError:
        pass
    return fallback
