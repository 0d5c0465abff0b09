"""``docker import -c`` / ``docker commit -c``: Dockerfile lines applied to an image config.

Only the instructions that change metadata are accepted (Docker's list: CMD, ENTRYPOINT,
ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR, HEALTHCHECK), with the
exec (JSON) and shell forms and ``$VAR`` expansion from ENV, as the builder does.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from typing import Any

from pyjail.errors import InvalidArgument

CONFIG_KEYS = frozenset({
    "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
    "StopSignal", "Healthcheck", "OnBuild", "ArgsEscaped", "Shell",
})
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}


def _env_map(config: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _expand(text: str, env: dict[str, str]) -> str:
    r"""``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:+alt}``; ``\$`` stays literal."""
    def sub(m: re.Match[str]) -> str:
        if m.start() > 0 and text[m.start() - 1] == "\\":
            return m.group(0)
        name = m.group(1) or m.group(4)
        value = env.get(name, "")
        if m.group(2) == "-":
            return value or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if value else ""
        return value
    return _VAR.sub(sub, text).replace("\\$", "$")


def _json_list(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _command(rest: str) -> list[str]:
    exec_form = _json_list(rest)
    return exec_form if exec_form is not None else ["/bin/sh", "-c", rest]


def _pairs(rest: str, instruction: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """``K=V K2="v 2"`` or the legacy ``K some value`` form."""
    words = shlex.split(rest, posix=True)
    if not words:
        raise InvalidArgument(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.strip().partition(" ")
        if not value.strip():
            raise InvalidArgument(f"{instruction} requires at least two arguments")
        return [(key, _expand(value.strip(), env))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instruction} names can not be blank" if not key else
                                  f"Syntax error - can't find = in \"{word}\". "
                                  "Must be of the form: name=value")
        pairs.append((key, _expand(value, env)))
    return pairs


def _ports(rest: str, env: dict[str, str]) -> list[str]:
    out = []
    for word in _expand(rest, env).split():
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        first, _, last = port.partition("-")
        if not first.isdigit() or (last and not last.isdigit()) or proto not in (
                "tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid containerPort: {word}")
        for p in range(int(first), int(last or first) + 1):
            out.append(f"{p}/{proto}")
    return out


def _duration(text: str) -> int:
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise InvalidArgument(f"time: invalid duration \"{text}\"")
    return total


def _healthcheck(rest: str) -> dict[str, Any]:
    words = rest.split(None, 1)
    if words and words[0].upper() == "NONE":
        return {"Test": ["NONE"]}
    check: dict[str, Any] = {}
    flags = {"--interval": "Interval", "--timeout": "Timeout",
             "--start-period": "StartPeriod", "--start-interval": "StartInterval"}
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        key, _, value = flag.partition("=")
        if key == "--retries":
            check["Retries"] = int(value)
        elif key in flags:
            check[flags[key]] = _duration(value)
        else:
            raise InvalidArgument(f"unknown flag: {key}")
        rest = rest.lstrip()
    kind, _, cmd = rest.partition(" ")
    if kind.upper() != "CMD" or not cmd.strip():
        raise InvalidArgument(f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")
    exec_form = _json_list(cmd.strip())
    check["Test"] = ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", cmd.strip()]
    return check


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply Dockerfile-like lines to the ``config`` section of an image config (a copy)."""
    out = json.loads(json.dumps(config))
    cmd_set = False
    for line in changes:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        env = _env_map(out)
        if instruction == "CMD":
            out["Cmd"] = _command(rest)
            cmd_set = True
        elif instruction == "ENTRYPOINT":
            out["Entrypoint"] = _command(rest)
            if not cmd_set:
                out.pop("Cmd", None)   # Docker: a new ENTRYPOINT drops an inherited CMD
        elif instruction == "ENV":
            for key, value in _pairs(rest, "ENV", env):
                env[key] = value
            out["Env"] = [f"{k}={v}" for k, v in env.items()]
        elif instruction == "LABEL":
            labels = out.setdefault("Labels", {}) or {}
            labels.update(dict(_pairs(rest, "LABEL", env)))
            out["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = out.get("ExposedPorts") or {}
            ports.update({p: {} for p in _ports(rest, env)})
            out["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            paths = _json_list(rest)
            paths = paths if paths is not None else _expand(rest, env).split()
            if not paths or any(not p.strip() for p in paths):
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes = out.get("Volumes") or {}
            volumes.update({p: {} for p in paths})
            out["Volumes"] = volumes
        elif instruction == "WORKDIR":
            path = _expand(rest, env)
            out["WorkingDir"] = posixpath.normpath(
                posixpath.join("/", out.get("WorkingDir") or "/", path))
        elif instruction == "USER":
            out["User"] = _expand(rest, env)
        elif instruction == "STOPSIGNAL":
            out["StopSignal"] = _expand(rest, env)
        elif instruction == "ONBUILD":
            out["OnBuild"] = [*(out.get("OnBuild") or []), rest]
        elif instruction == "HEALTHCHECK":
            out["Healthcheck"] = _healthcheck(rest)
        else:
            raise InvalidArgument(f"{instruction} is not a valid change command")
    return out


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge a ``config`` dict (Docker's Config keys) into the config section."""
    unknown = set(overrides) - CONFIG_KEYS
    if unknown:
        raise InvalidArgument(f"unsupported image config keys: {', '.join(sorted(unknown))}")
    out = json.loads(json.dumps(config))
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
