"""`supernet download` (issue 13.2) against a local HTTP server: official formats, a dropped connection that
resumes with a range request, a truncated file, a wrong checksum; no test touches the network."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from nds_records import write_nds
from supernet import downloads
from supernet.config import load_config
from supernet.errors import SupernetError
from supernet.groundtruth.tfrecord import write_records
from supernet.registry import build_kit
from test_groundtruth_nb101 import _official_records

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


class Server:
    """Serves ``files`` (name -> bytes) with range requests; ``drop`` (name -> n) sends the full length in the
    headers but only n bytes of the body, once, then closes (a dropped connection)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.drop, self.requests = files, {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                name = self.path.lstrip("/")
                outer.requests.append((name, self.headers.get("Range")))
                data = outer.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if (rng := self.headers.get("Range")) and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = outer.drop.pop(name, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def server():
    s = Server({})
    yield s
    s.close()


def _use(monkeypatch, server: Server, name: str, filename: str, data: bytes, md5: str | None = None) -> None:
    server.files[filename] = data
    monkeypatch.setitem(downloads.SOURCES, name, downloads.Source(server.url(filename), filename, md5))


def test_darts_nds_resumes_after_a_dropped_connection_and_becomes_the_official_table(tmp_path, server, monkeypatch):
    write_nds(tmp_path / "DARTS.json", 12)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(tmp_path / "DARTS.json", "data/DARTS.json")
    _use(monkeypatch, server, "darts_nds", "data.zip", buf.getvalue())
    server.drop["data.zip"] = 300
    cache = tmp_path / "cache"
    with pytest.raises(SupernetError, match="stopped .*run the same command again to resume"):
        downloads.download("darts_nds", cache)
    part = cache / "downloads" / "data.zip.part"
    assert part.stat().st_size == 300
    where, summary = downloads.download("darts_nds", cache)
    assert server.requests[-1] == ("data.zip", "bytes=300-")  # resumed, not restarted
    assert (cache / "downloads" / "data.zip").read_bytes() == buf.getvalue() and not part.exists()
    assert where == cache / "tables" / "darts_nds.npz" and summary == "12 architectures"
    cfg = load_config(RECIPES / "darts-nds.yaml", ["space.ground_truth=official", f"data.cache_dir={cache}"])
    assert len(build_kit(cfg).gt) == 12
    with pytest.raises(SupernetError, match="no converted table at .*run `supernet download nasbench101` first"):
        build_kit(load_config(RECIPES / "nb101.yaml", ["space.ground_truth=official", f"data.cache_dir={cache}"]))


def test_a_truncated_benchmark_file_is_refused_by_the_converter(tmp_path, server, monkeypatch):
    path = tmp_path / "full.tfrecord"
    write_records(path, _official_records())
    whole = path.read_bytes()
    _use(monkeypatch, server, "nasbench101", "nasbench_only108.tfrecord", whole[: len(whole) - 40])
    with pytest.raises(SupernetError, match="truncated|offset"):
        downloads.download("nasbench101", tmp_path / "cache")
    assert not (tmp_path / "cache" / "tables" / "nasbench101.npz").exists()
    _use(monkeypatch, server, "nasbench101", "nasbench_only108.tfrecord", whole)
    (tmp_path / "cache" / "downloads" / "nasbench_only108.tfrecord").unlink()
    where, summary = downloads.download("nasbench101", tmp_path / "cache")
    assert where.is_file() and "cells" in summary


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(tmp_path, server, monkeypatch):
    _use(monkeypatch, server, "cifar10", "cifar-10-python.tar.gz", b"not cifar", md5=hashlib.md5(b"cifar").hexdigest())
    with pytest.raises(SupernetError, match="has md5 .*expected"):
        downloads.download("cifar10", tmp_path / "cache")
    assert not list((tmp_path / "cache" / "cifar10").iterdir())
