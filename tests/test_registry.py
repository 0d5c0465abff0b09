"""Pull and push against Debian's ``docker-registry`` on loopback (anonymous and htpasswd),
a Bearer-token proxy in front of it, skopeo as a second client, and the docker CLI through
two pyjail daemons with separate data roots."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from pyjail.images import ImageStore, busybox_image
from pyjail.images.registry import (
    Credentials,
    DigestMismatch,
    ManifestUnknown,
    RegistryError,
    RegistryUnauthorized,
    decode_registry_auth,
    encode_registry_auth,
    is_insecure,
    pull,
    push,
)
from pyjail.images.registry.auth import parse_challenges
from pyjail.images.registry.media import OCI_INDEX, select_platform
from pyjail.images.store import goarch

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = shutil.which("docker-registry")
needs_registry = pytest.mark.skipif(REGISTRY is None, reason="docker-registry is not installed")
USER, PASSWORD = "alice", "s3cret-pw"
GOOD = Credentials(USER, PASSWORD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(d: Path) -> None:
    """A throw-away CA (ca.crt) and a server certificate for 127.0.0.1 signed by it."""
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=pyjail-test-ca")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")


def wait_http(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1, verify=False)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(url)


def htpasswd_line(user: str, password: str) -> str | None:
    tool = shutil.which("htpasswd")
    if tool:
        return subprocess.run([tool, "-Bbn", user, password], check=True, capture_output=True,
                              text=True).stdout.strip()
    try:
        import bcrypt
    except ImportError:
        return None
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}"


class Registry:
    """One ``docker-registry serve`` on 127.0.0.1:<free port>, storage in a temp dir."""

    def __init__(self, htpasswd: bool = False, tls: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pyjail-test-registry-"))
        self.host = f"127.0.0.1:{free_port()}"
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        self.scheme = "http"
        if tls:
            make_certificates(self.dir)
            config["http"]["tls"] = {"certificate": str(self.dir / "server.crt"),
                                     "key": str(self.dir / "server.key")}
            self.scheme = "https"
        if htpasswd:
            line = htpasswd_line(USER, PASSWORD)
            if line is None:
                shutil.rmtree(self.dir)
                pytest.skip("neither htpasswd nor bcrypt is available")
            (self.dir / "htpasswd").write_text(line + "\n")
            config["auth"] = {"htpasswd": {"realm": "pyjail-test",
                                           "path": str(self.dir / "htpasswd")}}
        (self.dir / "config.yml").write_text(json.dumps(config))   # JSON is YAML
        self.log = open(self.dir / "registry.log", "wb")
        assert REGISTRY is not None
        self.proc = subprocess.Popen([REGISTRY, "serve", str(self.dir / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"{self.scheme}://{self.host}/v2/")

    def blob_file(self, digest: str) -> Path:
        hex_ = digest.removeprefix("sha256:")
        return self.dir / "data/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    if REGISTRY is None:
        pytest.skip("docker-registry is not installed")
    reg = Registry()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def auth_registry() -> Iterator[Registry]:
    if REGISTRY is None:
        pytest.skip("docker-registry is not installed")
    reg = Registry(htpasswd=True)
    yield reg
    reg.stop()


@pytest.fixture
def stores() -> Iterator[Any]:
    """Fresh image stores on throw-away roots (no engine, no supervisor needed)."""
    made: list[Path] = []

    def make() -> ImageStore:
        path = Path(tempfile.mkdtemp(prefix="pyjail-test-store-"))
        made.append(path)
        return ImageStore(path)

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def tiny_image(store: ImageStore, reference: str, payload: bytes) -> str:
    """A one-layer image with unique content (so its blobs are shared with nothing else)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("data.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    buf.seek(0)
    return store.import_rootfs(buf, reference).id


def assert_empty(store: ImageStore) -> None:
    """No image, no name, no blob (not even a temp file), no layer."""
    assert store.list() == []
    assert [p.name for p in store.blobs.dir.iterdir()] == []
    assert [p.name for p in store.layers_dir.iterdir()] == []


def statuses(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("status", "") for m in messages]


# -- pieces without a registry ---------------------------------------------------------------

def test_registry_auth_header_roundtrip() -> None:
    header = encode_registry_auth(Credentials(USER, PASSWORD, serveraddress="127.0.0.1:5000"))
    assert "=" not in header.rstrip("=") or True
    assert decode_registry_auth(header) == Credentials(USER, PASSWORD,
                                                       serveraddress="127.0.0.1:5000")
    unpadded = base64.urlsafe_b64encode(json.dumps({"identitytoken": "tok"}).encode()).rstrip(b"=")
    assert decode_registry_auth(unpadded.decode()).identitytoken == "tok"
    legacy = base64.b64encode(json.dumps(
        {"auth": base64.b64encode(b"bob:pw").decode()}).encode()).decode()
    creds = decode_registry_auth(legacy)
    assert (creds.username, creds.password) == ("bob", "pw")
    assert decode_registry_auth("") is None
    assert decode_registry_auth(base64.b64encode(b"{}").decode()).anonymous


def test_challenge_parsing() -> None:
    got = parse_challenges('Bearer realm="https://auth.test/token",service="reg.test",'
                           'scope="repository:a/b:pull,push"')
    assert got == [("bearer", {"realm": "https://auth.test/token", "service": "reg.test",
                               "scope": "repository:a/b:pull,push"})]
    assert parse_challenges('Basic realm="x"') == [("basic", {"realm": "x"})]


def test_insecure_rules() -> None:
    assert is_insecure("127.0.0.1:5000") and is_insecure("localhost:5000")
    assert is_insecure("[::1]:5000") and is_insecure("127.9.9.9")
    assert not is_insecure("registry.test:5000")
    assert is_insecure("registry.test:5000", ["registry.test:5000"])
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"])
    assert not is_insecure("192.168.1.1:5000", ["10.0.0.0/8"])


def test_platform_selection() -> None:
    index = {"manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm",
                                                       "variant": "v6"}},
        {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "arm",
                                                       "variant": "v7"}},
        {"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": goarch()}},
    ]}
    assert select_platform(index, None)["digest"].endswith("3")
    assert select_platform(index, "linux/arm/v7")["digest"].endswith("2")
    with pytest.raises(ManifestUnknown, match="no matching manifest for linux/s390x"):
        select_platform(index, "linux/s390x")


# -- against docker-registry -----------------------------------------------------------------

@needs_registry
def test_push_pull_roundtrip_keeps_the_image_id(registry: Registry, stores: Any) -> None:
    a, b = stores(), stores()
    image = busybox_image(a)
    ref = f"{registry.host}/busybox:t"
    a.tag(image.id, ref)
    messages: list[dict[str, Any]] = []
    [digest] = push(a, ref, progress=messages.append, chunk_size=256 << 10)   # PATCH chunks
    text = statuses(messages)
    assert text[0] == f"The push refers to repository [{registry.host}/busybox]"
    assert "Preparing" in text and "Pushed" in text
    assert any(m.get("progressDetail", {}).get("current") for m in messages)
    assert messages[-1]["aux"]["Digest"] == digest
    assert f"t: digest: {digest} size: {messages[-1]['aux']['Size']}" in text
    assert f"{registry.host}/busybox@{digest}" in a.resolve(image.id).repo_digests

    messages.clear()
    pulled = pull(b, ref, progress=messages.append)
    assert pulled.id == image.id
    assert pulled.diff_ids == image.diff_ids
    assert pulled.references == [ref]
    assert pulled.repo_digests == [f"{registry.host}/busybox@{digest}"]
    text = statuses(messages)
    assert text[0] == "Pulling from busybox" and messages[0]["id"] == "t"
    for step in ("Pulling fs layer", "Download complete", "Pull complete"):
        assert step in text
    assert text[-2:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {ref}"]
    assert (b.layer_dirs(pulled)[0] / "bin" / "busybox").is_file()

    messages.clear()
    push(a, ref, progress=messages.append)
    assert "Layer already exists" in statuses(messages)
    messages.clear()
    pull(b, ref, progress=messages.append)
    assert statuses(messages)[-1] == f"Status: Image is up to date for {ref}"
    assert pull(stores(), f"{registry.host}/busybox@{digest}").id == image.id

    with pytest.raises(ManifestUnknown, match="not found: manifest unknown"):
        pull(b, f"{registry.host}/busybox:missing")
    with pytest.raises(ManifestUnknown):
        pull(b, f"{registry.host}/busybox@sha256:{'0' * 64}")


@needs_registry
def test_push_mounts_blobs_across_repositories(registry: Registry, stores: Any) -> None:
    a = stores()
    image_id = tiny_image(a, f"{registry.host}/mount-src:1", b"mount me" * 1000)
    push(a, f"{registry.host}/mount-src:1")
    a.tag(image_id, f"{registry.host}/mount-dst:1")
    messages: list[dict[str, Any]] = []
    push(a, f"{registry.host}/mount-dst:1", progress=messages.append)
    assert "Mounted from mount-src" in statuses(messages)
    assert pull(stores(), f"{registry.host}/mount-dst:1").id == image_id


@needs_registry
def test_pull_picks_the_platform_from_an_index(registry: Registry, stores: Any) -> None:
    a = stores()
    host_id = tiny_image(a, f"{registry.host}/multi:host", b"host arch")
    other_arch = "s390x" if goarch() != "s390x" else "amd64"
    other_id = tiny_image(a, f"{registry.host}/multi:other", b"other arch")
    descs = []
    for tag, arch in (("host", goarch()), ("other", other_arch)):
        [digest] = push(a, f"{registry.host}/multi:{tag}")
        r = requests.get(f"http://{registry.host}/v2/multi/manifests/{digest}", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"}, timeout=10)
        descs.append({"mediaType": r.headers["Content-Type"], "digest": digest,
                      "size": len(r.content), "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": descs[::-1]}).encode()
    r = requests.put(f"http://{registry.host}/v2/multi/manifests/both", data=index,
                     headers={"Content-Type": OCI_INDEX}, timeout=10)
    assert r.status_code == 201, r.text
    index_digest = "sha256:" + hashlib.sha256(index).hexdigest()
    b = stores()
    image = pull(b, f"{registry.host}/multi:both")
    assert image.id == host_id
    assert image.repo_digests == [f"{registry.host}/multi@{index_digest}"]
    assert pull(stores(), f"{registry.host}/multi:both", platform=f"linux/{other_arch}").id \
        == other_id
    with pytest.raises(ManifestUnknown, match="no matching manifest"):
        pull(stores(), f"{registry.host}/multi:both", platform="linux/riscv64")


@needs_registry
def test_basic_auth(auth_registry: Registry, stores: Any) -> None:
    a = stores()
    ref = f"{auth_registry.host}/private:1"
    image_id = tiny_image(a, ref, b"secret layer")
    with pytest.raises(RegistryUnauthorized, match="unauthorized: authentication required"):
        push(a, ref)
    with pytest.raises(RegistryUnauthorized, match="unauthorized") as err:
        push(a, ref, credentials=Credentials(USER, "wrong password"))
    assert err.value.status == 401 and f'"http://{auth_registry.host}/v2/' in str(err.value)
    push(a, ref, credentials=GOOD)
    b = stores()
    with pytest.raises(RegistryUnauthorized, match="unauthorized: authentication required"):
        pull(b, ref)
    assert_empty(b)
    assert pull(b, ref, credentials=GOOD).id == image_id


@needs_registry
def test_corrupt_or_missing_blob_leaves_nothing(registry: Registry, stores: Any) -> None:
    a = stores()
    ref = f"{registry.host}/fragile:1"
    image_id = tiny_image(a, ref, os.urandom(200_000))   # incompressible: a real transfer
    push(a, ref)
    [layer] = a.layer_descriptors(a.resolve(image_id))
    [pushed_layer] = requests.get(f"http://{registry.host}/v2/fragile/manifests/1", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10).json()["layers"]
    assert layer["mediaType"].endswith(".tar") and pushed_layer["digest"] != layer["digest"]
    blob = registry.blob_file(pushed_layer["digest"])
    good = blob.read_bytes()
    blob.write_bytes(good[:1000] + bytes([good[1000] ^ 0xFF]) + good[1001:])
    b = stores()
    with pytest.raises(DigestMismatch, match="verification failed"):
        pull(b, ref)
    assert_empty(b)
    blob.unlink()
    with pytest.raises(RegistryError, match="blob unknown"):
        pull(b, ref)
    assert_empty(b)
    blob.write_bytes(good)
    assert pull(b, ref).id == image_id


@needs_registry
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_registry_and_certs_d(stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry(tls=True)
    certs = Path(tempfile.mkdtemp(prefix="pyjail-test-certs-"))
    try:
        a = stores()
        ref = f"{reg.host}/tls:1"
        image_id = tiny_image(a, ref, b"over tls")
        push(a, ref)   # loopback: insecure by default, so TLS without verification
        import pyjail.images.registry.client as client_mod
        monkeypatch.setattr(client_mod, "is_insecure", lambda *args: False)
        with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED"):
            pull(stores(), ref, certs_dirs=[certs])
        (certs / reg.host).mkdir()
        shutil.copy(reg.dir / "ca.crt", certs / reg.host / "ca.crt")
        assert pull(stores(), ref, certs_dirs=[certs]).id == image_id
    finally:
        reg.stop()
        shutil.rmtree(certs, ignore_errors=True)


# -- a proxy on loopback: Bearer-token auth, and transfers that break off --------------------

class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    upstream: str
    bearer: bool
    cut: set[str]
    scopes: list[str]


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _token(self) -> None:
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != want:
            self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username '
                       b'or password"}]}', {"Content-Type": "application/json"})
            return
        scope = self.path.partition("scope=")[2].split("&")[0]
        self.server.scopes.append(requests.utils.unquote(scope))
        self._send(200, json.dumps({"token": "tok-" + scope}).encode(),
                   {"Content-Type": "application/json"})

    def _forward(self) -> None:
        if self.path.startswith("/token"):
            return self._token()
        host = self.headers["Host"]
        if self.server.bearer and not (self.headers.get("Authorization") or "").startswith(
                "Bearer tok-"):
            challenge = (f'Bearer realm="http://{host}/token",service="pyjail-test",'
                         f'scope="repository:x:pull"')
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication '
                              b'required"}]}', {"WWW-Authenticate": challenge,
                                                "Content-Type": "application/json"})
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("authorization", "content-length", "connection")}
        r = requests.request(self.command, self.server.upstream + self.path, data=body,
                             headers=headers, allow_redirects=False, timeout=30)
        out = {k: v for k, v in r.headers.items()
               if k.lower() not in ("content-length", "connection", "transfer-encoding")}
        digest = self.path.rsplit("/", 1)[-1]
        if self.command == "GET" and "/blobs/" in self.path and digest in self.server.cut:
            self.send_response(r.status_code)
            for k, v in out.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content[: len(r.content) // 2])   # then hang up mid-blob
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(r.status_code, r.content if self.command != "HEAD" else b"", out)
        if self.command == "HEAD":
            pass

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


@pytest.fixture
def proxy(registry: Registry) -> Iterator[_Proxy]:
    server = _Proxy(("127.0.0.1", 0), _ProxyHandler)
    server.upstream = f"http://{registry.host}"
    server.bearer, server.cut, server.scopes = False, set(), []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@needs_registry
def test_bearer_token_flow(proxy: _Proxy, stores: Any) -> None:
    proxy.bearer = True
    host = f"127.0.0.1:{proxy.server_address[1]}"
    a = stores()
    image_id = tiny_image(a, f"{host}/tokens/app:1", b"bearer")
    with pytest.raises(RegistryUnauthorized, match="incorrect username or password"):
        push(a, f"{host}/tokens/app:1", credentials=Credentials(USER, "nope"))
    push(a, f"{host}/tokens/app:1", credentials=GOOD)
    assert "repository:tokens/app:pull,push" in proxy.scopes
    assert pull(stores(), f"{host}/tokens/app:1", credentials=GOOD).id == image_id
    assert "repository:tokens/app:pull" in proxy.scopes


@needs_registry
def test_interrupted_pull_leaves_no_partial_image(proxy: _Proxy, registry: Registry,
                                                  stores: Any) -> None:
    host = f"127.0.0.1:{proxy.server_address[1]}"
    a = stores()
    ref = f"{host}/cut:1"
    busybox_image(a, ref)
    image_id = tiny_image(a, f"{host}/cut:2", os.urandom(100_000))
    push(a, ref)
    [digest] = push(a, f"{host}/cut:2")
    manifest = requests.get(f"http://{registry.host}/v2/cut/manifests/{digest}", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json"}, timeout=10).json()
    proxy.cut.add(manifest["layers"][0]["digest"])
    b = stores()
    pull(b, ref)   # another image in the store: it must survive the failure untouched
    before = sorted(p.name for p in b.blobs.dir.iterdir())
    with pytest.raises(RegistryError, match="error pulling"):
        pull(b, f"{host}/cut:2")
    assert [im.references for im in b.list()] == [[ref]]
    assert sorted(p.name for p in b.blobs.dir.iterdir()) == before
    proxy.cut.clear()
    assert pull(b, f"{host}/cut:2").id == image_id


# -- skopeo as the other client --------------------------------------------------------------

def write_oci_layout(store: ImageStore, image_id: str, dest: Path, tag: str) -> None:
    """An OCI image layout of a stored image (plain layers, config bytes as stored)."""
    image = store.resolve(image_id)
    config = store.blobs.get(image.id)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": image.id, "size": len(config)},
        "layers": store.layer_descriptors(image)}).encode()
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for desc in store.layer_descriptors(image):
        shutil.copy(store.blobs.path(desc["digest"]), blobs / desc["digest"][7:])
    (blobs / image.id[7:]).write_bytes(config)
    digest = hashlib.sha256(manifest).hexdigest()
    (blobs / digest).write_bytes(manifest)
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + digest,
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))


def skopeo(*args: str) -> str:
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@needs_registry
@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_reads_what_we_push_and_we_read_what_it_pushes(registry: Registry,
                                                              stores: Any) -> None:
    a = stores()
    busybox_image(a, f"{registry.host}/sk:1")
    [digest] = push(a, f"{registry.host}/sk:1")
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/sk:1"))
    assert info["Digest"] == digest and len(info["Layers"]) == 1
    work = Path(tempfile.mkdtemp(prefix="pyjail-test-skopeo-"))
    try:   # skopeo verifies every digest on the way
        skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/sk:1",
               f"oci:{work}/copy:sk")
        # and the other way: skopeo pushes (zstd-compressed) an OCI layout we wrote
        image_id = tiny_image(a, "skz:1", os.urandom(50_000) + b"\0" * 100_000)
        write_oci_layout(a, image_id, work / "layout", "skz")
        skopeo("copy", "--dest-tls-verify=false", "--dest-compress-format", "zstd",
               f"oci:{work}/layout:skz", f"docker://{registry.host}/skz:1")
        manifest = requests.get(f"http://{registry.host}/v2/skz/manifests/1", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10).json()
        assert manifest["layers"][0]["mediaType"].endswith("+zstd")
        b = stores()
        pulled = pull(b, f"{registry.host}/skz:1")
        assert pulled.id == image_id   # config bytes unchanged, whatever the compression
        assert (b.layer_dirs(pulled)[0] / "data.bin").stat().st_size == 150_000
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the docker CLI through two pyjail daemons -----------------------------------------------

class Daemon:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pyjail-test-daemon-", dir="/var/tmp"))
        self.sock = self.root / "api.sock"
        env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'daemon'}")
        self.log = open(self.root / "daemon.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyjail_daemon.main", "--data-root", str(self.root / "data"),
             "-H", f"unix://{self.sock}", "--pidfile", ""], stdout=self.log,
            stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.root / "daemon.log").read_text())
            time.sleep(0.05)

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", f"unix://{self.sock}", *args],
                              capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        from pyjail.engine import Engine
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        Engine(self.root / "data", restart_policies=False).shutdown_supervisor()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def daemons() -> Iterator[tuple[Daemon, Daemon]]:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    first = Daemon()
    try:
        second = Daemon()
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


@needs_registry
def test_docker_cli_push_and_pull_between_daemons(registry: Registry, auth_registry: Registry,
                                                  daemons: tuple[Daemon, Daemon]) -> None:
    a, b = daemons
    ref = f"{registry.host}/cli:t"
    image = busybox_image(ImageStore(a.root / "data" / "images"), ref)
    out = a.docker("push", ref)
    assert out.returncode == 0, out.stderr
    assert "Pushed" in out.stdout and "t: digest: sha256:" in out.stdout
    out = b.docker("pull", ref)
    assert out.returncode == 0, out.stderr
    assert f"Status: Downloaded newer image for {ref}" in out.stdout
    assert ImageStore(b.root / "data" / "images").resolve(ref).id == image.id
    out = b.docker("pull", f"{registry.host}/cli:missing")
    assert out.returncode != 0 and "manifest unknown" in out.stderr

    import docker
    api = docker.APIClient(base_url=f"unix://{a.sock}", version="1.44")
    private = f"{auth_registry.host}/cli"
    ImageStore(a.root / "data" / "images").tag(image.id, f"{private}:p")
    lines = list(api.push(private, tag="p", stream=True, decode=True,
                          auth_config={"username": USER, "password": "wrong"}))
    assert "unauthorized" in lines[-1]["errorDetail"]["message"]
    lines = list(api.push(private, tag="p", stream=True, decode=True,
                          auth_config={"username": USER, "password": PASSWORD}))
    assert "error" not in lines[-1] and lines[-1]["aux"]["Tag"] == "p"
    api_b = docker.APIClient(base_url=f"unix://{b.sock}", version="1.44")
    with pytest.raises(docker.errors.APIError, match="unauthorized"):
        api_b.pull(private, tag="p")
    api_b.pull(private, tag="p", auth_config={"username": USER, "password": PASSWORD})
    assert ImageStore(b.root / "data" / "images").resolve(f"{private}:p").id == image.id


@needs_registry
def test_login_cli_and_docker_py(auth_registry: Registry, registry: Registry,
                                 daemons: tuple[Daemon, Daemon], tmp_path: Path) -> None:
    a, _ = daemons
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "cli-config"))

    def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", f"unix://{a.sock}", *args], capture_output=True,
                              text=True, timeout=60, env=env, input=stdin)

    host = auth_registry.host
    out = docker("login", "-u", USER, "--password-stdin", host, stdin="wrong\n")
    assert out.returncode != 0
    assert (f"login attempt to http://{host}/v2/ failed with status: 401 Unauthorized"
            in out.stderr), out.stderr
    assert not (tmp_path / "cli-config" / "config.json").exists() or host not in (
        tmp_path / "cli-config" / "config.json").read_text()
    out = docker("login", "-u", USER, "--password-stdin", host, stdin=PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    assert "Login Succeeded" in out.stdout
    saved = json.loads((tmp_path / "cli-config" / "config.json").read_text())
    assert base64.b64decode(saved["auths"][host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    # the stored credentials then go along with a push through the same daemon
    ref = f"{host}/login-cli:1"
    busybox_image(ImageStore(a.root / "data" / "images"), ref)
    out = docker("push", ref)
    assert out.returncode == 0 and "digest: sha256:" in out.stdout, out.stderr
    assert docker("logout", host).returncode == 0

    import docker as docker_py
    client = docker_py.DockerClient(base_url=f"unix://{a.sock}", version="1.44")
    try:
        with pytest.raises(docker_py.errors.APIError) as info:
            client.login(USER, "wrong", registry=host, reauth=True,
                         dockercfg_path=str(tmp_path / "none.json"))
        assert info.value.status_code == 401
        assert "failed with status: 401 Unauthorized" in str(info.value)
        answer = client.login(USER, PASSWORD, registry=host, reauth=True,
                              dockercfg_path=str(tmp_path / "none.json"))
        assert answer == {"Status": "Login Succeeded", "IdentityToken": ""}
        # a registry without auth accepts anyone, as with dockerd
        assert client.login("anyone", "x", registry=registry.host, reauth=True,
                            dockercfg_path=str(tmp_path / "none.json"))["Status"] == \
            "Login Succeeded"
    finally:
        client.close()


@needs_registry
def test_login_bearer_realm(proxy: _Proxy) -> None:
    from pyjail.images.registry import login
    proxy.bearer = True
    host = f"127.0.0.1:{proxy.server_address[1]}"
    assert login(Credentials(USER, PASSWORD, serveraddress=host)) == ("Login Succeeded", "")
    assert proxy.scopes == [""]   # asked for no repository scope
    with pytest.raises(RegistryUnauthorized, match="incorrect username or password"):
        login(Credentials(USER, "nope", serveraddress=f"http://{host}/"))
