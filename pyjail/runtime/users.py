"""Resolving ``--user name[:group]`` against the container's own /etc/passwd and /etc/group."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidArgument


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _read(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(spec: str, passwd: str = "/etc/passwd", group: str = "/etc/group") -> ResolvedUser:
    """Docker's rules: a name must exist; a bare number need not (gid then 0, home /)."""
    user_part, _, group_part = (spec or "0").partition(":")
    users = _read(passwd)
    entry = None
    for row in users:
        if len(row) >= 7 and (row[0] == user_part or (user_part.isdigit() and row[2] == user_part)):
            entry = row
            break
    if entry is None and not user_part.isdigit():
        raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
    uid = int(entry[2]) if entry else int(user_part)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    groups = _read(group)
    if group_part:
        found = None
        for row in groups:
            if len(row) >= 3 and (row[0] == group_part or (group_part.isdigit() and row[2] == group_part)):
                found = int(row[2])
                break
        if found is None:
            if not group_part.isdigit():
                raise InvalidArgument(
                    f"unable to find group {group_part}: no matching entries in group file")
            found = int(group_part)
        gid = found
    extra = []
    name = entry[0] if entry else None
    if name:
        for row in groups:
            if len(row) >= 4 and name in row[3].split(",") and row[2].isdigit():
                g = int(row[2])
                if g != gid and g not in extra:
                    extra.append(g)
    return ResolvedUser(uid, gid, extra, home)
