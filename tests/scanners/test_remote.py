"""Model files behind URLs: fsspec's in-memory filesystem and a local S3-compatible server (moto)
give the findings a scan of a local copy gives, the ranged reading fetches a small part of a
large PyTorch archive or safetensors file, and --from-list reads a registry's manifest."""

from __future__ import annotations

import io
import json
import os
import pickle
import socket
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

fsspec = pytest.importorskip("fsspec")

from mlthreat import cli  # noqa: E402
from mlthreat.scanners import remote, scan_paths  # noqa: E402
from mlthreat.scanners.modelfile import scan_path  # noqa: E402
from tests.scanners.conftest import Payload  # noqa: E402


def _torch_archive(payload: bytes, storage: int) -> bytes:
    """A zip laid out as torch.save writes it: data.pkl first, then a large raw storage."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/data/0", np.random.default_rng(0).bytes(storage))
        z.writestr("archive/version", b"3\n")
    return out.getvalue()


def _safetensors(length_byte_first: bytes, tensor_bytes: int) -> bytes:
    header = json.dumps({"w": {"dtype": "U8", "shape": [tensor_bytes],
                               "data_offsets": [0, tensor_bytes]}}).encode()
    # pad the header so that its length's first byte is the one asked for
    while struct.pack("<Q", len(header))[:1] != length_byte_first:
        header += b" "
    return struct.pack("<Q", len(header)) + header + bytes(tensor_bytes)


@pytest.fixture
def files(tmp_path: Path, marker: Path) -> dict[str, bytes]:
    evil = pickle.dumps(Payload(marker), protocol=2)
    return {
        "evil.pkl": evil,
        "clean.pkl": pickle.dumps({"weights": [1.0, 2.0]}),
        "evil.pt": _torch_archive(evil, 3 << 20),
        "clean.pt": _torch_archive(pickle.dumps({"w": 1}, protocol=2), 3 << 20),
        # a header length whose first byte is a pickle opcode ('(' MARK): read as a pickle too
        "model.safetensors": _safetensors(b"(", 3 << 20),
        "lying.safetensors": _safetensors(b"\x00", 16)[:-8],       # offsets past the end
    }


def _same(found: list, local: list) -> list[tuple[str, str, str, str]]:
    def key(f: object) -> tuple[str, str, str, str]:
        return (f.rule, f.severity, f.member or "", f.message)   # type: ignore[attr-defined]
    assert sorted(map(key, found)) == sorted(map(key, local))
    return sorted(map(key, found))


@pytest.mark.parametrize("whole", [True, False], ids=["fetched-whole", "ranged"])
def test_a_remote_file_gives_the_local_findings(files: dict[str, bytes], tmp_path: Path,
                                                whole: bool, marker: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if not whole:                      # every file through RangeData, whatever its size
        monkeypatch.setattr(remote, "WHOLE_BYTES", 0)
    fs = fsspec.filesystem("memory")
    judged = {}
    for name, blob in files.items():
        fs.pipe(f"/reg-{whole}/{name}", blob)
        (tmp_path / name).write_bytes(blob)
        found, fetched = remote.scan_remote(f"memory:///reg-{whole}/{name}")
        judged[name] = _same(found, scan_path(tmp_path / name))
        assert all(f.file == f"memory:///reg-{whole}/{name}" for f in found)
        assert fetched >= 0
    assert any(s == "critical" for _, s, _, _ in judged["evil.pkl"])
    assert any(s == "critical" and m == "archive/data.pkl" for _, s, m, _ in judged["evil.pt"])
    assert not judged["clean.pt"] and not judged["clean.pkl"] and not judged["model.safetensors"]
    assert any(r == "MF-SAFETENSORS" for r, _, _, _ in judged["lying.safetensors"])
    assert not marker.exists()


def test_ranged_reading_fetches_little_of_a_large_archive(files: dict[str, bytes],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(remote, "WHOLE_BYTES", 0)
    fs = fsspec.filesystem("memory")
    for name in ("evil.pt", "model.safetensors"):
        fs.pipe(f"/big/{name}", files[name])
        _, fetched = remote.scan_remote(f"memory:///big/{name}")
        # the head, the tail, the HDF5 offsets and the pickles: blocks of 64 KiB, not 3 MiB
        assert fetched <= 12 * remote.BLOCK < len(files[name]) / 4, (name, fetched)


def test_range_data_reads_what_bytes_read() -> None:
    blob = np.random.default_rng(1).bytes(5 * remote.BLOCK + 123)
    fs = fsspec.filesystem("memory")
    fs.pipe("/r/blob", blob)
    data = remote.RangeData(fs, "/r/blob", len(blob))
    rng = np.random.default_rng(2)
    for _ in range(300):
        a, b = sorted(int(v) for v in rng.integers(-len(blob) - 5, len(blob) + 5, size=2))
        assert data[a:b] == blob[a:b]
        i = int(rng.integers(0, len(blob)))
        assert data[i] == blob[i] and data[-i - 1] == blob[-i - 1]
    stream = data.open()
    stream.seek(remote.BLOCK - 3)
    assert stream.read(10) == blob[remote.BLOCK - 3:remote.BLOCK + 7]
    assert data.fetched <= len(blob) + remote.BLOCK


def test_a_prefix_in_memory_is_scanned_file_by_file(files: dict[str, bytes]) -> None:
    fs = fsspec.filesystem("memory")
    for name, blob in files.items():
        fs.pipe(f"/prefix/models/{name}", blob)
    report = scan_paths(["memory://prefix/models"], exclude=["clean.*"])
    assert report.files == len(files) - 2                   # the excluded two are not read
    worst = {f.file.rsplit("/", 1)[1] for f in report.findings if f.severity == "critical"}
    assert worst == {"evil.pkl", "evil.pt"}
    assert any("model-file scanner only" in n for n in report.notes)
    whole = sum(len(b) for n, b in files.items() if not n.startswith("clean."))   # all < 64 MiB
    assert report.fetched == whole
    assert f"4 object(s) read from stores: {whole / 1e6:.1f} MB fetched" in " ".join(report.notes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1; s3fs finds it through fsspec's environment settings."""
    server_mod = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION", "FSSPEC_S3_ENDPOINT_URL")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    fsspec.config.set_conf_env(fsspec.config.conf)       # read the variable set just now
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        fsspec.config.conf.pop("s3", None)


def test_scan_of_an_s3_prefix(s3: str, files: dict[str, bytes], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import s3fs
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3}, skip_instance_cache=True)
    fs.mkdir("registry")
    for name, blob in files.items():
        fs.pipe(f"registry/prod/{name}", blob)
    code = cli.main(["scan", "s3://registry/prod/", "-f", "json", "--fail-on", "high"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    critical = {f["file"] for f in out["findings"] if f["severity"] == "critical"}
    assert critical == {"s3://registry/prod/evil.pkl", "s3://registry/prod/evil.pt"}
    code = cli.main(["scan", "s3://registry/nothing-here/"])
    err = capsys.readouterr().err
    assert code == 2 and "not found" in err


def test_from_list_reads_a_manifest(tmp_path: Path, files: dict[str, bytes],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    fsspec.filesystem("memory").pipe("/manifest/evil.pt", files["evil.pt"])
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "evil.pkl").write_bytes(files["evil.pkl"])
    listing = tmp_path / "registry.txt"
    listing.write_text("# the registry's artifacts\nmodels/evil.pkl\n\nmemory:///manifest/evil.pt\n")
    assert cli.main(["scan", "--from-list", str(listing), "-f", "json"]) == 0
    found = {f["file"] for f in json.loads(capsys.readouterr().out)["findings"]
             if f["severity"] == "critical"}
    assert found == {"evil.pkl", "memory:///manifest/evil.pt"}
    listing.write_text("models/evil.pkl\n# gone:\nmodels/missing.pkl\n")
    assert cli.main(["scan", "--from-list", str(listing)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{listing}:3: models/missing.pkl: not found" in err
