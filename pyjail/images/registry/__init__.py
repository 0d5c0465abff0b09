"""Pull and push over the OCI distribution API (anonymous, Basic and Bearer auth)."""

from pyjail.images.registry.auth import Credentials, decode_registry_auth, encode_registry_auth
from pyjail.images.registry.client import RegistryClient, is_insecure
from pyjail.images.registry.errors import (
    DigestMismatch,
    ManifestUnknown,
    RegistryError,
    RegistryUnauthorized,
)
from pyjail.images.registry.login import login, server_domain
from pyjail.images.registry.pull import pull
from pyjail.images.registry.push import push

__all__ = [
    "Credentials",
    "DigestMismatch",
    "ManifestUnknown",
    "RegistryClient",
    "RegistryError",
    "RegistryUnauthorized",
    "decode_registry_auth",
    "encode_registry_auth",
    "is_insecure",
    "login",
    "pull",
    "push",
    "server_domain",
]
