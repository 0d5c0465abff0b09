"""Image store: OCI content-addressed blobs, layers unpacked once, Docker-style names."""

from pyjail.images.bootstrap import busybox_image
from pyjail.images.debootstrap import debian_image
from pyjail.images.layers import create_layer, extract_layer
from pyjail.images.reference import Reference, parse
from pyjail.images.store import Image, ImageStore, chain_ids

__all__ = [
    "Image",
    "ImageStore",
    "Reference",
    "busybox_image",
    "chain_ids",
    "debian_image",
    "create_layer",
    "extract_layer",
    "parse",
]
