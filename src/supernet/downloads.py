"""``supernet download``: the official benchmark files in one command, converted to the table format.

Each source is fetched over HTTP into the cache (``CACHE/downloads``), resuming a partial file with a range
request, and refused when it is truncated (shorter than the server said), fails its published checksum, or
fails the converter's own validation. Benchmarks are then converted to ``CACHE/tables/<space>.npz``, which
``space.ground_truth=official`` uses; CIFAR-10 goes where a run without ``data.root`` looks for it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supernet.errors import SupernetError
from supernet.groundtruth.shipped import official_table

CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    url: str
    filename: str
    md5: str | None = None  # where the publisher gives one
    note: str = ""


SOURCES: dict[str, Source] = {
    "cifar10": Source("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                      "c58f30108f718f92721af3b95e74349a"),
    "nasbench101": Source("https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord",
                          "nasbench_only108.tfrecord"),
    "nasbench201": Source("https://drive.google.com/uc?export=download&id=16Y0UwGisiouVRxW-W5hEtbxmcHw_0hF_",
                          "NAS-Bench-201-v1_1-096897.pth",
                          note="hosted on Google Drive, which may ask for a confirmation page instead of the file; "
                               "download it in a browser and pass --url file:///PATH, or any mirror's URL"),
    "darts_nds": Source("https://dl.fbaipublicfiles.com/nds/data.zip", "data.zip"),
}
NDS_MEMBER = "DARTS.json"


def fetch(url: str, dest: Path, md5: str | None = None, on_bytes: Callable[[int], None] | None = None) -> Path:
    """Download ``url`` to ``dest`` (kept as ``dest.part`` until complete and checked). A ``.part`` left by
    an interrupted download is resumed with a range request (restarted if the server ignores ranges)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = have and getattr(response, "status", 200) == 206
            expected = _total(response, have if resumed else 0)
            with open(part, "ab" if resumed else "wb") as f:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
    except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:  # the .part stays: resumed next time
        raise SupernetError(f"download of {url} stopped ({exc}); run the same command again to resume "
                            f"({part.stat().st_size if part.exists() else 0} bytes kept in {part})") from None
    size = part.stat().st_size
    if expected is not None and size < expected:  # the connection ended early: keep what came, resume next time
        raise SupernetError(f"download of {url} stopped after {size} of {expected} bytes; run the same command again "
                            f"to resume (kept in {part})")
    if expected is not None and size > expected:
        part.unlink()
        raise SupernetError(f"{url}: {size} bytes arrived where the server announced {expected}; deleted them, retry")
    if md5 is not None and (got := _md5(part)) != md5:
        part.unlink()
        raise SupernetError(f"{url} has md5 {got}, expected {md5}: deleted it, retry (or check the mirror)")
    os.replace(part, dest)
    return dest


def _total(response, offset: int) -> int | None:  # noqa: ANN001 - an http.client.HTTPResponse
    """The complete file's size the server announced (Content-Range total, or offset + Content-Length)."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].strip().isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(name: str, cache: Path, url: str | None = None, directory: Path | None = None,
             on_bytes: Callable[[int], None] | None = None) -> tuple[Path, str]:
    """Fetch ``name`` (a space or ``cifar10``) and convert it; returns (where it is usable, a summary)."""
    if name not in SOURCES:
        raise SupernetError(f"unknown download '{name}'; known: {', '.join(SOURCES)}")
    source = SOURCES[name]
    folder = directory or cache / "downloads"
    if name == "cifar10":  # where a run without data.root looks for it (data.setup.default_root)
        folder = directory or cache / "cifar10"
    dest = folder / source.filename
    if not dest.exists():
        try:
            fetch(url or source.url, dest, source.md5 if url is None else None, on_bytes)
        except SupernetError as exc:
            raise SupernetError(f"{exc}{'; ' + source.note if source.note else ''}") from None
    if name == "cifar10":
        from supernet.data.cifar import load_cifar10

        ds = load_cifar10(dest, cache_dir=cache)  # decodes once into the array cache, and validates the archive
        return dest, f"{len(ds.train_y)} training and {len(ds.test_y)} test images"
    from supernet.registry import ConvertFlags, get_space

    plugin = get_space(name)
    assert plugin.convert is not None
    out = official_table(name, cache)
    out.parent.mkdir(parents=True, exist_ok=True)
    source_file = _nds_json(dest) if name == "darts_nds" else dest
    tmp = out.with_name(out.stem + ".partial.npz")
    try:
        summary = plugin.convert(str(source_file), str(tmp), ConvertFlags())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return out, summary


def _nds_json(archive: Path) -> Path:
    """NDS ships ``data.zip``; the DARTS-NDS table comes from its ``DARTS.json``."""
    target = archive.with_name(NDS_MEMBER)
    if target.exists():
        return target
    try:
        with zipfile.ZipFile(archive) as zf:
            member = next((m for m in zf.namelist() if m.rsplit("/", 1)[-1] == NDS_MEMBER), None)
            if member is None:
                raise SupernetError(f"{archive} holds no {NDS_MEMBER}: not the NDS release's data.zip")
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise SupernetError(f"{archive} is not a zip file ({exc}); delete it and download again") from None
    return target
