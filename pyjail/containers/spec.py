"""From a container record (Docker's Config + HostConfig) and its image to an OCI runtime spec."""

from __future__ import annotations

import os
import shutil

from ..errors import InvalidArgument
from ..runtime import capabilities, defaults, process
from ..runtime.seccomp import DEFAULT_PROFILE, profile_to_oci

INIT_BINARIES = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init")
INIT_PATH = "/sbin/docker-init"

_ULIMIT_TYPES = {"nofile", "nproc", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
                 "nice", "rss", "rtprio", "rttime", "sigpending", "stack", "as"}


def find_init() -> str:
    for path in INIT_BINARIES:
        if os.path.exists(path):
            return path
    found = shutil.which("tini-static") or shutil.which("tini")
    if found is None:
        raise InvalidArgument("--init needs tini (apt-get install tini)")
    return found


def merged_env(image_env: list[str], env: list[str]) -> list[str]:
    out: dict[str, str] = {}
    for item in list(image_env or []) + list(env or []):
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    out.setdefault("PATH", defaults.DEFAULT_PATH)
    return [f"{k}={v}" for k, v in out.items()]


def command_line(config: dict, image_config: dict) -> list[str]:
    """Docker's rule: an explicit Entrypoint drops the image's Cmd unless Cmd is given too."""
    entrypoint = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if entrypoint is None:
        entrypoint = image_config.get("Entrypoint") or []
        if cmd is None:
            cmd = image_config.get("Cmd") or []
    elif cmd is None:
        cmd = []
    return list(entrypoint or []) + list(cmd or [])


def resources(h: dict) -> dict:
    res: dict = {"devices": defaults.device_cgroup_rules()}
    if h.get("Privileged"):
        res["devices"] = [{"allow": True, "access": "rwm"}]
    memory: dict = {}
    if h.get("Memory"):
        memory["limit"] = h["Memory"]
        swap = h.get("MemorySwap") or 0
        memory["swap"] = swap if swap else h["Memory"] * 2
    if h.get("MemoryReservation"):
        memory["reservation"] = h["MemoryReservation"]
    if memory:
        res["memory"] = memory
    cpu: dict = {}
    if h.get("CpuShares"):
        cpu["shares"] = max(2, h["CpuShares"])
    if h.get("NanoCpus"):
        cpu["period"] = 100_000
        cpu["quota"] = h["NanoCpus"] * 100_000 // 1_000_000_000
    if h.get("CpuQuota"):
        cpu["quota"] = h["CpuQuota"]
        cpu["period"] = h.get("CpuPeriod") or 100_000
    elif h.get("CpuPeriod"):
        cpu["period"] = h["CpuPeriod"]
    if h.get("CpusetCpus"):
        cpu["cpus"] = h["CpusetCpus"]
    if h.get("CpusetMems"):
        cpu["mems"] = h["CpusetMems"]
    if cpu:
        res["cpu"] = cpu
    if h.get("PidsLimit") and h["PidsLimit"] > 0:
        res["pids"] = {"limit": h["PidsLimit"]}
    if h.get("BlkioWeight"):
        res["blockIO"] = {"weight": h["BlkioWeight"]}
    return res


def rlimits(h: dict) -> list[dict]:
    out = []
    for ul in h.get("Ulimits") or []:
        name = str(ul.get("Name", "")).lower()
        if name not in _ULIMIT_TYPES:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        out.append({"type": f"RLIMIT_{name.upper()}", "soft": int(ul.get("Soft", 0)),
                    "hard": int(ul.get("Hard", 0))})
    return out


def build_spec(*, container_id: str, config: dict, host: dict, image_config: dict,
               lower_dirs: list[str], upper: str, work: str, rootfs: str,
               etc_files: dict[str, str], mounts: list[dict],
               namespace_paths: dict[str, str] | None = None) -> dict:
    """The OCI spec the runtime executes; pure function of its inputs (easy to test)."""
    img = image_config or {}
    args = command_line(config, img)
    if not args:
        raise InvalidArgument("no command specified")
    privileged = bool(host.get("Privileged"))
    caps = capabilities.resolve(host.get("CapAdd") or (), host.get("CapDrop") or (), privileged)
    user = config.get("User") or img.get("User") or ""
    env = merged_env(img.get("Env") or [], config.get("Env") or [])
    if config.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    if host.get("Init"):
        args = [INIT_PATH, "--", *args]
        mounts = [*mounts, {"destination": INIT_PATH, "type": "bind", "source": find_init(),
                            "options": ["bind", "ro"]}]
    security_opt = host.get("SecurityOpt") or []
    no_new_privs = "no-new-privileges:false" not in security_opt
    seccomp_unconfined = privileged or "seccomp=unconfined" in security_opt or \
        "seccomp:unconfined" in security_opt
    annotations = {process.ANNOTATION_LOWER: ":".join(lower_dirs)}
    if upper:
        annotations[process.ANNOTATION_UPPER] = upper
        annotations[process.ANNOTATION_WORK] = work
    if user:
        annotations[process.ANNOTATION_USER] = user
    spec_mounts = defaults.default_mounts(host.get("ShmSize") or 64 * 1024 * 1024)
    if privileged:
        for m in spec_mounts:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    for path, opts in (host.get("Tmpfs") or {}).items():
        spec_mounts.append({"destination": path, "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "noexec"]
                            + [o for o in str(opts).split(",") if o]})
    for dest, src in etc_files.items():
        spec_mounts.append({"destination": dest, "type": "bind", "source": src,
                            "options": ["rbind", "rprivate"]})
    spec_mounts += mounts
    net_mode = host.get("NetworkMode") or "none"
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if net_mode != "host":
        namespaces.append({"type": "network"})
    for ns in namespaces:
        path = (namespace_paths or {}).get(ns["type"])
        if path:
            ns["path"] = path
    time_offsets = host.get("TimeOffsets")
    if time_offsets:
        # pyjail extension: a time namespace with clock offsets in seconds, e.g.
        # {"boottime": 86400, "monotonic": 3600} (Docker has no equivalent).
        namespaces.append({"type": "time"})
    if host.get("PidMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "pid"]
    if host.get("IpcMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "ipc"]
    if net_mode == "host" and host.get("UTSMode") != "private":
        namespaces = [n for n in namespaces if n["type"] != "uts"]
    ulimits = rlimits(host)
    if not any(r["type"] == "RLIMIT_NOFILE" for r in ulimits):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        ulimits.append({"type": "RLIMIT_NOFILE", "soft": min(1048576, hard), "hard": hard})
    linux: dict = {
        "namespaces": namespaces,
        "cgroupsPath": f"/pyjail/{container_id}",
        "resources": resources(host),
        "devices": defaults.device_nodes(),
        "maskedPaths": [] if privileged else list(host.get("MaskedPaths")
                                                  or defaults.MASKED_PATHS),
        "readonlyPaths": [] if privileged else list(host.get("ReadonlyPaths")
                                                    or defaults.READONLY_PATHS),
        "sysctl": dict(host.get("Sysctls") or {}),
    }
    if time_offsets:
        linux["timeOffsets"] = {clock: {"secs": int(secs), "nanosecs": 0}
                                for clock, secs in time_offsets.items()}
    if not seccomp_unconfined:
        linux["seccomp"] = profile_to_oci(DEFAULT_PROFILE, caps)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": bool(config.get("Tty")),
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env,
            "cwd": config.get("WorkingDir") or img.get("WorkingDir") or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": ulimits,
            "noNewPrivileges": no_new_privs,
            "oomScoreAdj": host.get("OomScoreAdj") or 0,
        },
        "root": {"path": rootfs, "readonly": bool(host.get("ReadonlyRootfs"))},
        "hostname": config.get("Hostname") or container_id[:12],
        "domainname": config.get("Domainname") or "",
        "mounts": spec_mounts,
        "linux": linux,
        "annotations": annotations,
    }
