"""Docker's ``filters``: labels (``key``, ``key=value``, ``label!``) and event matching."""

from __future__ import annotations

from pyjail.filters import labels_match

__all__ = ["event_matches", "labels_match"]


def event_matches(event: dict, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters; values of one key are OR-ed, keys are AND-ed."""
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    kind = event.get("Type", "")
    if "type" in filters and kind not in filters["type"]:
        return False
    if "event" in filters:
        action = event.get("Action", "")
        if not any(action == v or action.split(":", 1)[0] == v for v in filters["event"]):
            return False
    if "scope" in filters and event.get("scope", "local") not in filters["scope"]:
        return False
    if "container" in filters:
        if kind != "container":
            return False
        name = attrs.get("name", "")
        if not any(actor.get("ID", "").startswith(v) or name == v.lstrip("/")
                   for v in filters["container"]):
            return False
    if "image" in filters:
        image = attrs.get("image", "") if kind == "container" else (
            attrs.get("name", "") or actor.get("ID", ""))
        if not any(_image_matches(v, image, actor.get("ID", "")) for v in filters["image"]):
            return False
    for key in ("volume", "network"):
        if key in filters and (kind != key or actor.get("ID") not in filters[key]
                               and attrs.get("name") not in filters[key]):
            return False
    for label in filters.get("label", []):
        key, sep, value = label.partition("=")
        if key not in attrs or (sep and attrs[key] != value):
            return False
    return True


def _image_matches(want: str, image: str, actor_id: str) -> bool:
    if not want:
        return False
    if want in (image, actor_id) or actor_id.startswith(want):
        return True
    base = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return want == base or want + ":latest" == image
