"""Docker's ``label`` / ``label!`` filters, shared by containers, images, volumes, networks."""

from __future__ import annotations


def labels_match(labels: dict[str, str], filters: dict[str, list[str]]) -> bool:
    """``label=key`` or ``label=key=value`` must match; ``label!=…`` must not."""
    for want in filters.get("label", []):
        key, sep, value = want.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    for unwanted in filters.get("label!", []):
        key, sep, value = unwanted.partition("=")
        if key in labels and (not sep or labels[key] == value):
            return False
    return True
