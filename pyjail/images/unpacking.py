"""A layer's tar and its unpacked directory made in one pass (commit, build steps).

Why: committing used to write the layer tar into a blob, then read the blob back and
unpack it: two passes, one after the other. Here every byte ``create_layer`` writes into the
blob also goes to a ``tar -x`` process (on the other core), so the layer directory is ready
when the blob is; the store then takes it instead of unpacking. tar extracts exactly the
bytes hashed into the blob, so it is the same tree a pull of that blob gives. The stream
needs no checking on the way (gnutar.Checker): create_layer made it from a real directory,
so no name repeats, climbs out or passes through a symlink; what tar cannot do (whiteouts,
xattrs) create_layer notes as it goes, and it is applied when tar is done. Small layers
(the stream ends before gnutar.MIN_BYTES) start nothing: the store unpacks them from the
blob, cheaper than starting a process. If tar fails, the store falls back the same way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pyjail.errors import PyjailError
from pyjail.images import gnutar
from pyjail.images.blobs import BlobWriter
from pyjail.images.layers import create_layer, finish_tar_tree


class UnpackingSink:
    """A HashingSink: writes into ``blob`` and, past the threshold, into ``tar -x`` too."""

    def __init__(self, blob: BlobWriter, staging: Path) -> None:
        self.blob = blob
        self.staging = staging            # <staging>/diff receives the tree
        self.fixups = gnutar.Fixups()
        self.early: list[bytes] = []
        self.early_size = 0
        self.tar: gnutar.TarProcess | None = None
        self.given_up = False

    def write(self, data: bytes, /) -> int:
        n = self.blob.write(data)
        if self.tar is not None:
            self._send(data)
        elif not self.given_up:
            self.early.append(data)
            self.early_size += len(data)
            if self.early_size >= gnutar.MIN_BYTES:
                self._start()
        return n

    def _send(self, data: bytes) -> None:
        assert self.tar is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.tar.fd, view):]
        except BrokenPipeError:   # tar died: the store unpacks from the blob instead
            self._give_up()

    def _start(self) -> None:
        self.staging.mkdir()
        (self.staging / "diff").mkdir()
        if not gnutar.usable(self.staging / "diff", self.early_size):
            self._give_up()
            return
        self.tar = gnutar.TarProcess(self.staging / "diff")
        early, self.early = self.early, []
        for chunk in early:
            if self.tar is not None:
                self._send(chunk)

    def _give_up(self) -> None:
        self.given_up = True
        self.early = []
        if self.tar is not None:
            self.tar.kill()
            self.tar = None
        shutil.rmtree(self.staging, ignore_errors=True)

    def finish(self) -> str:
        """The blob's digest; ``blob.unpacked`` names the tree when it was made whole."""
        digest = self.blob.finish()
        self.early = []
        if self.tar is not None:
            try:
                self.tar.finish()
                finish_tar_tree(self.staging / "diff", self.fixups)
            except PyjailError:
                self._give_up()
            else:
                self.blob.unpacked = (self.staging, self.fixups.size)
            self.tar = None
        return digest

    def abort(self) -> None:
        """The layer is not going to be registered: stop tar, remove what it made."""
        self._give_up()


def write_layer(store: Any, upper: Path | str, blob: BlobWriter) -> str:
    """``create_layer(upper, blob)``, unpacking as it goes; returns the diff_id."""
    sink = UnpackingSink(blob, store.layer_staging_path())
    try:
        return create_layer(upper, sink, sink.fixups)
    except BaseException:
        sink.abort()
        raise
