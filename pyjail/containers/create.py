"""Validating a Docker ``POST /containers/create`` body before anything is created.

The engine's container model *is* Docker's (Config + HostConfig), so the daemon passes
bodies through and inspect returns them; this module fills defaults and rejects bad
input with Docker's wording, all before a directory or cgroup exists.
"""

from __future__ import annotations

import os
import re

from ..errors import InvalidArgument
from ..runtime import capabilities

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
RESTART_POLICIES = {"", "no", "always", "unless-stopped", "on-failure"}
MIN_MEMORY = 6 * 1024 * 1024

_CONFIG_DEFAULTS: dict = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": True,
    "AttachStderr": True, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}
_HOST_DEFAULTS: dict = {
    "Binds": None, "NetworkMode": "none", "PortBindings": None,
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "Dns": [],
    "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private",
    "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
    "UsernsMode": "", "ShmSize": 64 * 1024 * 1024, "Runtime": "", "Isolation": "",
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": None,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": None,
    "PidsLimit": None, "Ulimits": None, "Init": None, "Tmpfs": None, "Sysctls": None,
    "Mounts": None, "MaskedPaths": None, "ReadonlyPaths": None, "LogConfig":
    {"Type": "json-file", "Config": {}},
}

_INT_FIELDS = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod",
               "CpuQuota", "BlkioWeight", "ShmSize", "OomScoreAdj")


def _expect(obj: object, kind: type | tuple[type, ...], field: str) -> None:
    if obj is not None and not isinstance(obj, kind) or isinstance(obj, bool) and kind is int:
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidArgument(f"invalid type for {field}: expected {name}")


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return "/" + name.lstrip("/")


def normalize(body: dict) -> tuple[dict, dict]:
    """Return (Config, HostConfig) with Docker's defaults, or raise InvalidArgument."""
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    host = body.get("HostConfig")
    _expect(host, dict, "HostConfig")
    host = host or {}
    config = {**_CONFIG_DEFAULTS}
    for key, value in body.items():
        if key not in ("HostConfig", "NetworkingConfig"):
            config[key] = value
    for key in ("Cmd", "Entrypoint"):
        if isinstance(config.get(key), str):
            config[key] = [config[key]] if key == "Entrypoint" else ["/bin/sh", "-c", config[key]]
        _expect(config.get(key), list, key)
        if config.get(key) is not None and not all(isinstance(a, str) for a in config[key]):
            raise InvalidArgument(f"invalid type for {key}: expected a list of strings")
    _expect(config.get("Env"), list, "Env")
    for item in config.get("Env") or []:
        if not isinstance(item, str) or not item or item.startswith("="):
            raise InvalidArgument(f"invalid environment variable: {item!r}")
    _expect(config.get("Labels"), dict, "Labels")
    for field in ("Image", "User", "WorkingDir", "Hostname", "Domainname"):
        _expect(config.get(field), str, field)
    for field in ("Tty", "OpenStdin", "StdinOnce"):
        _expect(config.get(field), bool, field)
    if config.get("WorkingDir") and not config["WorkingDir"].startswith("/"):
        raise InvalidArgument(
            f"the working directory '{config['WorkingDir']}' is invalid, it needs to be an "
            "absolute path")
    if not config.get("Image"):
        raise InvalidArgument("config.Image is required")
    hostconfig = {**_HOST_DEFAULTS, **{k: v for k, v in host.items() if v is not None}}
    for field in _INT_FIELDS:
        value = hostconfig.get(field)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"invalid type for HostConfig.{field}: expected integer")
    _validate_resources(hostconfig)
    _validate_restart(hostconfig)
    for field in ("CapAdd", "CapDrop", "Binds", "SecurityOpt"):
        _expect(hostconfig.get(field), list, f"HostConfig.{field}")
    capabilities.resolve(hostconfig.get("CapAdd") or (), hostconfig.get("CapDrop") or ())
    if config.get("Tty") and hostconfig.get("Runtime") in ("runc", "crun"):
        raise InvalidArgument(f"a terminal (-t) is not supported with the "
                              f"{hostconfig['Runtime']} runtime yet; use the built-in runtime")
    for bind in hostconfig.get("Binds") or []:
        parse_bind(bind)
    _expect(hostconfig.get("Tmpfs"), dict, "HostConfig.Tmpfs")
    offsets = hostconfig.get("TimeOffsets")
    _expect(offsets, dict, "HostConfig.TimeOffsets")
    for clock, secs in (offsets or {}).items():
        if clock not in ("monotonic", "boottime") or not isinstance(secs, int) \
                or isinstance(secs, bool):
            raise InvalidArgument("HostConfig.TimeOffsets takes integer seconds for "
                                  "'monotonic' and 'boottime'")
    _expect(hostconfig.get("Ulimits"), list, "HostConfig.Ulimits")
    mode = hostconfig.get("NetworkMode") or "none"
    # pyjail.network: "default" is Docker's default bridge; other names are checked
    # against the networks by NetworkManager.container_created.
    if mode == "default":
        mode = "bridge"
    hostconfig["NetworkMode"] = mode
    if not isinstance(mode, str) or mode == "container:":
        raise InvalidArgument(f"network {mode} not found")
    return config, hostconfig


def _validate_resources(h: dict) -> None:
    if h["Memory"] < 0:
        raise InvalidArgument("invalid memory limit: must be a positive number of bytes")
    if 0 < h["Memory"] < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if h["MemorySwap"] > 0 and h["Memory"] and h["MemorySwap"] < h["Memory"]:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage")
    if h["MemorySwap"] < -1:
        raise InvalidArgument("invalid memory swap limit")
    ncpu = os.cpu_count() or 1
    if h["NanoCpus"] and (h["CpuPeriod"] or h["CpuQuota"]):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if h["NanoCpus"] < 0 or h["NanoCpus"] > ncpu * 1_000_000_000:
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if h["CpuQuota"] and h["CpuQuota"] < 1000 and h["CpuQuota"] != -1:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if h["CpuPeriod"] and not 1000 <= h["CpuPeriod"] <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if h["CpuShares"] < 0 or h["CpuShares"] > 262144:
        raise InvalidArgument("invalid CPU shares: must be between 2 and 262144")
    if h["BlkioWeight"] and not 10 <= h["BlkioWeight"] <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    pids = h.get("PidsLimit")
    if pids is not None and (not isinstance(pids, int) or isinstance(pids, bool)):
        raise InvalidArgument("invalid type for HostConfig.PidsLimit: expected integer")
    if h["ShmSize"] < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if not -1000 <= h["OomScoreAdj"] <= 1000:
        raise InvalidArgument(
            f"Invalid value {h['OomScoreAdj']}, range for oom score adj is [-1000, 1000]")


def _validate_restart(h: dict) -> None:
    policy = h.get("RestartPolicy") or {}
    _expect(policy, dict, "HostConfig.RestartPolicy")
    name = policy.get("Name") or "no"
    count = policy.get("MaximumRetryCount") or 0
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy: unknown policy '{name}'; use one of "
                              "'no', 'always', 'on-failure', or 'unless-stopped'")
    if not isinstance(count, int) or count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used "
                              "with 'on-failure'")
    if h.get("AutoRemove") and name not in ("", "no"):
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    h["RestartPolicy"] = {"Name": name, "MaximumRetryCount": count}


def parse_bind(bind: str) -> tuple[str, str, bool]:
    """'src:dst[:ro|rw]' -> (source, destination, read_only). Source: a path or a volume name."""
    if not isinstance(bind, str):
        raise InvalidArgument("invalid bind mount spec: must be a string")
    parts = bind.split(":")
    if len(parts) == 2:
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{bind}'")
    if not src or not dst.startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{bind}'")
    opts = set(filter(None, mode.split(",")))
    unknown = opts - {"ro", "rw", "z", "Z", "nocopy", "rprivate", "private", "rslave", "slave",
                      "rshared", "shared"}
    if unknown:
        raise InvalidArgument(f"invalid mode: {mode}")
    if dst == "/":
        raise InvalidArgument("invalid volume specification: destination can't be '/'")
    return src, os.path.normpath(dst), "ro" in opts
