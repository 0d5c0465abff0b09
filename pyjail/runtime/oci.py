"""Running the same bundle under an installed OCI runtime (runc, crun).

``create`` forks the container's init, which waits on runc's exec fifo; the runc process
then exits and the init is re-parented to us (the supervisor is a child subreaper), so
we reap it exactly as with the built-in runtime. The rootfs overlay, which the built-in
runtime mounts inside the container's namespace, is mounted on the host here and
unmounted after exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from .. import errors
from . import process
from . import syscalls as sc
from .base import Runtime, Spawned
from .users import resolve_user


class OciCliRuntime(Runtime):
    def __init__(self, binary: str = "runc") -> None:
        path = shutil.which(binary)
        if path is None:
            raise errors.InvalidArgument(f"runtime {binary!r} is not installed")
        self.name = binary
        self.binary = path
        self.state_root = f"/run/pyjail/{binary}"

    def _cmd(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.state_root, *args]

    def _run(self, args: list[str], stdio: tuple[int, int, int] | None = None) -> None:
        """Run a runtime command; with ``stdio`` the container inherits those three fds,
        so the runtime's own errors go to a log file instead of stderr."""
        log_path = None
        if stdio is not None:
            os.makedirs(self.state_root, exist_ok=True)
            log_path = os.path.join(self.state_root, f"log-{os.getpid()}-{id(args)}.json")
            args = [args[0], "--log", log_path, "--log-format", "json", *args[1:]]
            proc = subprocess.run(args, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                                  close_fds=True)
        else:
            proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, close_fds=True)
        message = ""
        if log_path is not None:
            try:
                with open(log_path) as f:
                    for line in f:
                        try:
                            entry = json.loads(line)
                        except ValueError:
                            continue
                        if entry.get("level") in ("error", "fatal"):
                            message = entry.get("msg", message)
                os.unlink(log_path)
            except FileNotFoundError:
                pass
        elif proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip()
        if proc.returncode != 0:
            if "executable file not found" in message or "no such file or directory" in message:
                raise errors.ExecutableNotFound(message)
            if "permission denied" in message:
                raise errors.PermissionDenied(message)
            raise errors.RuntimeFailure(f"{self.name}: {message or 'failed'}")

    def _prepare_bundle(self, spec: dict, bundle: str) -> dict:
        spec = json.loads(json.dumps(spec))
        annotations = spec.get("annotations") or {}
        root = spec["root"]["path"]
        os.makedirs(root, exist_ok=True)
        lower = annotations.pop(process.ANNOTATION_LOWER, None)
        if lower and not os.path.ismount(root):
            data = f"lowerdir={lower}"
            if annotations.get(process.ANNOTATION_UPPER):
                data += (f",upperdir={annotations.pop(process.ANNOTATION_UPPER)}"
                         f",workdir={annotations.pop(process.ANNOTATION_WORK)}")
            sc.mount("overlay", root, "overlay", 0, data)
        user_spec = annotations.pop(process.ANNOTATION_USER, None)
        if user_spec:
            resolved = resolve_user(user_spec, os.path.join(root, "etc/passwd"),
                                    os.path.join(root, "etc/group"))
            spec["process"]["user"] = {"uid": resolved.uid, "gid": resolved.gid,
                                       "additionalGids": resolved.additional_gids}
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        return spec

    def spawn(self, container_id: str, spec: dict, bundle: str,
              stdio: tuple[int, int, int]) -> Spawned:
        self._prepare_bundle(spec, bundle)
        pid_file = os.path.join(bundle, f"{self.name}.pid")
        self.delete(container_id)
        args = self._cmd("create", "--bundle", bundle, "--pid-file", pid_file, container_id)
        try:
            self._run(args, stdio)
            self._run(self._cmd("start", container_id))
        except errors.PyjailError:
            self.after_exit(container_id, bundle)
            raise
        with open(pid_file) as f:
            return Spawned(int(f.read().strip()))

    def spawn_exec(self, container_id: str, spec: dict, init_pid: int,
                   stdio: tuple[int, int, int]) -> Spawned:
        proc_file = os.path.join(self.state_root, f"{container_id}.exec.json")
        pid_file = proc_file + ".pid"
        process_spec = dict(spec["process"])
        process_spec.setdefault("cwd", "/")
        with open(proc_file, "w") as f:
            json.dump(process_spec, f)
        try:
            self._run(self._cmd("exec", "--detach", "--pid-file", pid_file, "--process", proc_file,
                                container_id), stdio)
            with open(pid_file) as f:
                return Spawned(int(f.read().strip()))
        finally:
            for path in (proc_file, pid_file):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def delete(self, container_id: str) -> None:
        subprocess.run(self._cmd("delete", "--force", container_id), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def after_exit(self, container_id: str, bundle: str) -> None:
        self.delete(container_id)
        root = os.path.join(bundle, "rootfs")
        if os.path.ismount(root):
            sc.umount(root, sc.MNT_DETACH)

    def pause(self, container_id: str) -> None:
        self._run(self._cmd("pause", container_id))

    def resume(self, container_id: str) -> None:
        self._run(self._cmd("resume", container_id))
