"""Image references as Docker spells them: ``busybox`` is ``docker.io/library/busybox:latest``.

Same grammar and normalisation as distribution/reference (``ParseNormalizedNamed``), so a
name the Docker CLI accepts resolves to the same repository here, and names are shown back
in their familiar short form (``busybox:latest``, ``me/app:1``, ``quay.io/x/y:2``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyjail.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
           r"(?::[0-9]+)?")
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^((?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::({_TAG}))?(?:@({_DIGEST}))?$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")


def is_full_id(text: str) -> bool:
    """A full image id: 64 hex digits, with or without ``sha256:``."""
    return bool(_HEX64.match(text) or _SHA256.match(text))


@dataclass(frozen=True)
class Reference:
    """A normalised reference: ``domain/path`` plus an optional tag and digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository name as Docker prints it, ``busybox``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    def familiar(self) -> str:
        """``busybox:latest`` / ``busybox@sha256:...``: the form of RepoTags and messages."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str | None = DEFAULT_TAG) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text``; without a tag or digest, ``latest`` is implied
    (``default_tag=False`` keeps it bare). Raises InvalidArgument with Docker's wording."""
    if not text:
        raise InvalidArgument("invalid reference format")
    if _HEX64.match(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    name, _, _ = text.partition("@")
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name = name[:colon]
    domain, remainder = _split_domain(name)
    if remainder.lower() != remainder:
        raise InvalidArgument(
            f"invalid reference format: repository name ({remainder}) must be lowercase")
    full = f"{domain}/{remainder}" + text[len(name):]
    m = _REFERENCE.match(full)
    if not m:
        raise InvalidArgument("invalid reference format")
    if len(m.group(1)) > NAME_TOTAL_MAX:
        raise InvalidArgument(
            f"repository name must not be more than {NAME_TOTAL_MAX} characters")
    tag, digest = m.group(2), m.group(3)
    if digest is not None and not digest.startswith("sha256:"):
        raise InvalidArgument(f"unsupported digest algorithm: {digest}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    if digest is not None:
        tag = None   # name:tag@digest is looked up by its digest, as Docker does
    return Reference(domain, remainder, tag, digest)
