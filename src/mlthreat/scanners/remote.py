"""Model files in object stores and other fsspec filesystems (`s3://`, `gs://`, `az://`,
`memory://`, ...), scanned without downloading what the scanner does not read.

A file of up to WHOLE_BYTES is fetched in one request and scanned as a local one. A larger file
is read through `RangeData`, which fetches the blocks that are touched and keeps them: the
format is told from the same bytes a local scan looks at (the head, the tail, the offsets where
an HDF5 superblock could sit), then
- a safetensors file is judged from its header and its length (the tensors are never fetched);
- a zip archive (PyTorch's `torch.save`, Keras, npz) from its central directory and the members
  the scanner opens: for a PyTorch archive the pickles, `config.json` and TorchScript code, not
  the storages that make up nearly all of its bytes; where the first byte is also a pickle
  opcode (a safetensors header's length), the pickle reading fetches as far as it reads;
- every other format (a pickle, joblib, HDF5, ONNX, GGUF, ...) is read from its first to its
  last byte by a scan, so it is fetched whole into a temporary file and scanned there.
Nothing fetched is executed; the findings are those a scan of a local copy gives (tests compare).
"""

from __future__ import annotations

import re
import tempfile
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from mlthreat.errors import InputError
from mlthreat.scanners.interface import ScanFinding
from mlthreat.scanners.modelfile import (
    MAX_FILE_BYTES,
    TEXT_NAMES,
    _MappedFile,
    finding,
    kinds,
    scan_bytes,
    scan_path,
)

WHOLE_BYTES = 64 * 1024**2     # fetched in one request below this size
BLOCK = 64 * 1024              # the unit of range requests (a run of missing blocks is one)
KEEP_BLOCKS = 1024             # blocks kept in memory per file (64 MiB)
RANGE_KINDS = {"zip", "safetensors"}


def is_url(text: str) -> bool:
    """A location for fsspec (`s3://bucket/key`), not a local path; `file://` counts as local."""
    m = _PROTOCOL.match(text)
    return m is not None and m.group(1).lower() != "file"


_PROTOCOL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def local_of(text: str) -> str:
    """`file:///x/y` → `/x/y`; anything else unchanged."""
    return text[len("file://"):] if text.startswith("file://") else text


# the fsspec backend of a protocol, and mlthreat's extra that installs it
BACKENDS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"),
            "gcs": ("gcsfs", "gcs"), "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"),
            "abfss": ("adlfs", "azure")}


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for `url`; a missing backend is an input error."""
    import fsspec
    try:
        fs, path = fsspec.core.url_to_fs(url)
        return fs, str(path)
    except (ImportError, ValueError) as exc:
        package, extra = BACKENDS.get(url.partition("://")[0], ("", ""))
        hint = f"pip install {package} (the {extra} extra)" if package else \
            "install its fsspec backend"
        raise InputError(f"{url}: cannot open ({exc}); {hint}") from None


class RangeData:
    """A remote file as the scanner's `Data`: len() and slices, each block fetched once (a
    range request) and kept while recently used. `fetched` counts the bytes transferred."""

    def __init__(self, fs: Any, path: str, size: int) -> None:
        self.fs, self.path, self.size = fs, path, size
        self.blocks: OrderedDict[int, bytes] = OrderedDict()
        self.fetched = 0

    def __len__(self) -> int:
        return self.size

    def _blocks(self, first: int, last: int) -> list[bytes]:
        """Blocks first..last, each missing run of them fetched in one range request."""
        n = first
        while n <= last:
            if n in self.blocks:
                n += 1
                continue
            end = n
            while end + 1 <= last and end + 1 not in self.blocks:
                end += 1
            got = bytes(self.fs.cat_file(self.path, n * BLOCK,
                                         min(self.size, (end + 1) * BLOCK)))
            self.fetched += len(got)
            for i in range(n, end + 1):
                self.blocks[i] = got[(i - n) * BLOCK:(i - n + 1) * BLOCK]
            n = end + 1
        out = []
        for i in range(first, last + 1):
            self.blocks.move_to_end(i)
            out.append(self.blocks[i])
        while len(self.blocks) > max(KEEP_BLOCKS, last - first + 1):
            self.blocks.popitem(last=False)
        return out

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, int):
            if key < 0:
                key += self.size
            if not 0 <= key < self.size:
                raise IndexError("RangeData index out of range")
            return self._blocks(key // BLOCK, key // BLOCK)[0][key % BLOCK]
        start, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError("RangeData slices have no step")
        if stop <= start:
            return b""
        first = start // BLOCK
        return b"".join(self._blocks(first, (stop - 1) // BLOCK))[start - first * BLOCK:
                                                                   stop - first * BLOCK]

    def open(self) -> IO[bytes]:
        """A seekable file over the same blocks (zipfile reads the archive through it, the
        pickle machine a reading of the first bytes as a pickle)."""
        class Lines(_MappedFile):
            def readline(self, size: int | None = -1) -> bytes:
                line = super().readline(LINE_LIMIT if size is None or size < 0 else size)
                if len(line) >= LINE_LIMIT and not line.endswith(b"\n"):
                    raise FetchWhole     # a text opcode's line this long: read it all locally
                return line
        return cast("IO[bytes]", Lines(cast("bytes", self)))


class FetchWhole(BaseException):   # noqa: N818 - a signal past the scanner's own handlers
    """The ranged reading cannot stay small and exact: fetch the file whole."""


LINE_LIMIT = 1 << 20


def scan_remote(url: str) -> tuple[list[ScanFinding], int]:
    """The model-file scanner's findings for one remote file, and the bytes fetched."""
    fs, path = filesystem(url)
    name = PurePosixPath(path).name
    try:
        size = int(fs.size(path))
        if size > MAX_FILE_BYTES:
            return [finding(url, "high", "MF-TOO-LARGE", f"larger than {MAX_FILE_BYTES >> 30} "
                            "GiB: not scanned, treat as unsafe")], 0
        if size == 0:
            return [], 0
        if size <= WHOLE_BYTES:
            data = bytes(fs.cat_file(path))
            return scan_bytes(data, url, name=name), len(data)
        ranged = RangeData(fs, path, size)
        # read as the scanner reads bytes: len() and slices (typed as bytes for it)
        found = kinds(cast("bytes", ranged), name)
        core = [k for k in found if k != "pickle-also"]
        if core and set(core) <= RANGE_KINDS and not name.lower().endswith(TEXT_NAMES):
            try:
                return (scan_bytes(cast("bytes", ranged), url, name=name, formats=found),
                        ranged.fetched)
            except FetchWhole:
                pass
        with tempfile.NamedTemporaryFile(prefix="mlthreat-scan-", suffix=f"-{name}") as local:
            fs.get_file(path, local.name)
            whole = scan_path(Path(local.name))
        return ([replace(f, file=url) if f.file == local.name else f for f in whole],
                size + ranged.fetched)
    except OSError as exc:
        return [finding(url, "medium", "MF-UNREADABLE", f"cannot read: {exc}")], 0
