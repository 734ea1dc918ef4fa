"""Dataset loading (every layout, safety, cache) and the on-device loader."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require_shared
from supernet.data import cifar
from supernet.data.cifar import ImageDataset, load_cifar10, subset
from supernet.data.loader import (
    CIFAR_MEAN,
    CIFAR_STD,
    DeviceLoader,
    apply_augmentation,
    draw_augmentation,
    split_indices,
)
from supernet.errors import SupernetError

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_TAR = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
CLASSES = ("cat", "dog", "frog")


def fake_dataset(n_train: int = 15, n_test: int = 6, seed: int = 0) -> ImageDataset:
    """Labels sorted, so the image-folder order (class, then file name) equals the batch order."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n_train + n_test, 32, 32, 3), dtype=np.uint8)
    train_y, test_y = (np.sort(np.arange(n, dtype=np.int64) % len(CLASSES)) for n in (n_train, n_test))
    return ImageDataset(images[:n_train], train_y, images[n_train:], test_y, CLASSES)


class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 ``str`` opcodes, as in the official CIFAR-10 batches."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_str2(self, obj: bytes) -> None:
        n = len(obj)
        self.write(
            (pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n))
            + obj
        )
        self.memoize(obj)

    dispatch[bytes] = save_str2


def dumps(obj: object, protocol: int | str) -> bytes:
    if protocol != "py2":
        return pickle.dumps(obj, protocol=int(protocol))
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def write_batches(ds: ImageDataset, root: Path, protocol: int | str = "py2") -> Path:
    out = root / "cifar-10-batches-py"
    out.mkdir(parents=True)

    def dump(name: str, obj: object) -> None:
        (out / name).write_bytes(dumps(obj, protocol))

    def flat(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072))

    chunks = np.array_split(np.arange(len(ds.train_y)), 5)
    for i, c in enumerate(chunks, 1):
        dump(
            f"data_batch_{i}",
            {b"batch_label": b"x", b"data": flat(ds.train_x[c]), b"labels": ds.train_y[c].tolist()},
        )
    dump("test_batch", {b"data": flat(ds.test_x), b"labels": ds.test_y.tolist()})
    dump("batches.meta", {b"label_names": [c.encode() for c in ds.classes], b"num_vis": 3072})
    return out


def write_folder(ds: ImageDataset, root: Path) -> Path:
    for split, xs, ys in (("train", ds.train_x, ds.train_y), ("test", ds.test_x, ds.test_y)):
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            d = root / split / ds.classes[y]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(d / f"{i:04d}.png")
    return root


def write_tar(src: Path, dest: Path, arcname: str) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(src, arcname=arcname)
    return dest


def assert_same(a: ImageDataset, b: ImageDataset) -> None:
    assert a.classes == b.classes
    for f in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        assert getattr(a, f).dtype == getattr(b, f).dtype


# ------------------------------------------------------------------------------------------ layouts


@pytest.mark.parametrize("protocol", ["py2", 4, 5])
def test_official_batches(tmp_path: Path, protocol: int | str) -> None:
    ds = fake_dataset()
    batches = write_batches(ds, tmp_path, protocol)
    assert_same(load_cifar10(tmp_path, cache_dir=tmp_path / "c1"), ds)
    assert_same(load_cifar10(batches, cache_dir=tmp_path / "c2"), ds)


def test_all_layouts_load_identically(tmp_path: Path) -> None:
    ds = fake_dataset()
    write_batches(ds, tmp_path / "official")
    folder = write_folder(ds, tmp_path / "folder")
    (folder / "train" / "notes.txt").write_text("ignored")
    tars = [
        write_tar(folder, tmp_path / "nested.tar.gz", "cifar-mini"),
        write_tar(folder, tmp_path / "flat.tgz", "."),
    ]
    official_tar = write_tar(tmp_path / "official", tmp_path / "official.tar.gz", ".")
    for i, src in enumerate([tmp_path / "official", folder, *tars, official_tar]):
        assert_same(load_cifar10(src, cache_dir=tmp_path / f"cache{i}"), ds)


def test_malicious_pickle_refused(tmp_path: Path) -> None:
    batches = write_batches(fake_dataset(), tmp_path)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, ("echo pwned > " + str(tmp_path / "pwned"),)

    (batches / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(SupernetError, match=r"data_batch_3.*refusing.*system"):
        load_cifar10(tmp_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "pwned").exists()


def test_malformed_batch_names_file(tmp_path: Path) -> None:
    batches = write_batches(fake_dataset(), tmp_path)
    (batches / "data_batch_2").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    )
    with pytest.raises(SupernetError, match="data_batch_2.*3072"):
        load_cifar10(tmp_path, cache_dir=tmp_path / "cache")
    (batches / "test_batch").unlink()
    with pytest.raises(SupernetError, match="test_batch"):
        load_cifar10(tmp_path, cache_dir=tmp_path / "cache")


def test_malformed_folders(tmp_path: Path) -> None:
    folder = write_folder(fake_dataset(), tmp_path / "f")
    (folder / "test" / "dog" / "0003.png").write_bytes(b"not a png")
    with pytest.raises(SupernetError, match=r"test/dog/0003\.png"):
        load_cifar10(folder, cache_dir=tmp_path / "c")
    Image.new("RGB", (31, 32)).save(folder / "test" / "dog" / "0003.png")
    with pytest.raises(SupernetError, match=r"0003\.png.*31x32"):
        load_cifar10(folder, cache_dir=tmp_path / "c")
    (folder / "test" / "dog" / "0003.png").unlink()
    (folder / "train" / "emu").mkdir()
    with pytest.raises(SupernetError, match="train/emu"):
        load_cifar10(folder, cache_dir=tmp_path / "c")
    (folder / "train" / "emu").rmdir()
    for f in (folder / "test").rglob("*.png"):
        f.unlink()
    with pytest.raises(SupernetError, match="test"):
        load_cifar10(folder, cache_dir=tmp_path / "c")


def test_grey_and_jpeg_images_become_rgb(tmp_path: Path) -> None:
    for split in ("train", "test"):
        d = tmp_path / split / "only"
        d.mkdir(parents=True)
        Image.new("L", (32, 32), 200).save(d / "a.png")
        Image.new("RGB", (32, 32), (10, 20, 30)).save(d / "b.JPG")
    ds = load_cifar10(tmp_path, cache_dir=tmp_path / "c")
    assert ds.train_x.shape == (2, 32, 32, 3) and ds.classes == ("only",)
    assert (ds.train_x[0] == 200).all()


def test_missing_or_unknown_root(tmp_path: Path) -> None:
    with pytest.raises(SupernetError, match="does not exist.*image folder"):
        load_cifar10(tmp_path / "nope", download=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(SupernetError, match="no CIFAR-10 data"):
        load_cifar10(tmp_path / "junk", download=True)


def test_download_failure_and_bad_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> object:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(cifar.urllib.request, "urlopen", offline)
    with pytest.raises(SupernetError, match="manually"):
        load_cifar10(tmp_path / "dl", cache_dir=tmp_path / "c")
    monkeypatch.setattr(cifar.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"garbage"))
    with pytest.raises(SupernetError, match="md5"):
        load_cifar10(tmp_path / "dl", cache_dir=tmp_path / "c")
    assert not (tmp_path / "dl").exists()  # no partial file, and no empty directory left behind


def test_cache_hit_and_corrupt_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = fake_dataset()
    tar = write_tar(write_folder(ds, tmp_path / "f"), tmp_path / "d.tgz", "d")
    monkeypatch.setenv("SUPERNET_CACHE", str(tmp_path / "env"))
    assert_same(load_cifar10(tar), ds)
    (cache_file,) = (tmp_path / "env" / "datasets").glob("*.npz")
    monkeypatch.setattr(cifar, "_parse", lambda tree: pytest.fail("cache miss"))
    assert_same(load_cifar10(tar), ds)
    monkeypatch.undo()
    cache_file.write_bytes(b"corrupt")
    with pytest.warns(UserWarning, match="corrupt"):
        assert_same(load_cifar10(tar, cache_dir=cache_file.parent), ds)
    assert_same(load_cifar10(tar, cache_dir=cache_file.parent), ds)  # rebuilt, no warning needed
    assert not list(cache_file.parent.glob("*.tmp"))


def test_subset_is_deterministic_and_balanced() -> None:
    ds = fake_dataset(30, 12)
    a, b = subset(ds, 9, 6, seed=1), subset(ds, 9, 6, seed=1)
    assert_same(a, b)
    assert np.bincount(a.train_y).tolist() == [3, 3, 3] and np.bincount(a.test_y).tolist() == [2, 2, 2]
    assert not np.array_equal(subset(ds, 9, 6, seed=2).train_x, a.train_x)
    with pytest.raises(SupernetError):
        subset(ds, 31, 1, seed=0)


@pytest.mark.slow
def test_real_jpeg_tar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared(REAL_TAR, "real CIFAR-10 JPEG archive")
    ds = load_cifar10(REAL_TAR, cache_dir=tmp_path)
    assert ds.train_x.shape == (50000, 32, 32, 3) and ds.test_x.shape == (10000, 32, 32, 3)
    assert ds.classes[0] == "airplane" and len(ds.classes) == 10
    assert np.bincount(ds.train_y).tolist() == [5000] * 10
    assert np.bincount(ds.test_y).tolist() == [1000] * 10

    def no_decoding(*args: object) -> None:
        raise AssertionError("a cached dataset must not be decoded again")

    monkeypatch.setattr(cifar, "_decode_split", no_decoding)
    assert_same(load_cifar10(REAL_TAR, cache_dir=tmp_path), ds)


# ------------------------------------------------------------------------------------------ loader


def test_split_indices() -> None:
    tr, va = split_indices(100, 0.8, seed=3)
    assert len(tr) == 80 and len(va) == 20
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(100))
    assert (np.diff(tr) > 0).all() and (np.diff(va) > 0).all()
    np.testing.assert_array_equal(split_indices(100, 0.8, seed=3)[0], tr)
    assert not np.array_equal(split_indices(100, 0.8, seed=4)[0], tr)
    tr, va = split_indices(10, 1.0, seed=0)
    assert len(tr) == 10 and len(va) == 0
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(SupernetError):
            split_indices(10, bad, seed=0)
    with pytest.raises(SupernetError):
        split_indices(10, 0.01, seed=0)


def make_loader(n: int = 21, **kw: object) -> DeviceLoader:
    rng = np.random.default_rng(0)
    args: dict[str, object] = dict(augment=True, shuffle=True, drop_last=False, seed=7) | kw
    return DeviceLoader(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10, 8, **args)  # type: ignore[arg-type]


def collect(loader: DeviceLoader, e: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader.epoch(e))


def test_epoch_reproducible_and_varies() -> None:
    a, b = collect(make_loader(), 3), collect(make_loader(), 3)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = collect(make_loader(), 4)
    assert not torch.equal(a[0][0], c[0][0])
    assert not torch.equal(torch.cat([y for _, y in a]), torch.cat([y for _, y in c]))
    assert collect(make_loader(), 3)[0][0].dtype == torch.float32


def test_batch_counts() -> None:
    for drop_last, expected in ((False, [8, 8, 5]), (True, [8, 8])):
        loader = make_loader(drop_last=drop_last)
        assert len(loader) == len(expected)
        assert [len(y) for _, y in loader.epoch(0)] == expected
    assert sorted(torch.cat([y for _, y in make_loader(augment=False).epoch(0)]).tolist()) == sorted(
        (np.arange(21) % 10).tolist()
    )


def test_no_augment_is_plain_normalisation() -> None:
    loader = make_loader(augment=False, shuffle=False)
    x = torch.cat([b for b, _ in loader.epoch(0)])
    ref = (loader.images.float() / 255 - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        CIFAR_STD
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(x, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(torch.cat([y for _, y in loader.epoch(0)]), loader.labels)


def test_channels_last() -> None:
    x, _ = next(make_loader(channels_last=True).epoch(0))
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, next(make_loader().epoch(0))[0])


def test_crop_and_flip_match_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen)
    dy, dx, flip = draw_augmentation(64, gen)
    assert 0 <= int(dy.min()) and int(dy.max()) == 8 and int(dx.min()) == 0 and 0 < int(flip.sum()) < 64
    out = apply_augmentation(x, dy, dx, flip).numpy()
    for i in range(64):  # torchvision semantics: RandomCrop(32, padding=4) then RandomHorizontalFlip
        padded = np.pad(x[i].numpy(), ((0, 0), (4, 4), (4, 4)))
        ref = padded[:, int(dy[i]) : int(dy[i]) + 32, int(dx[i]) : int(dx[i]) + 32]
        np.testing.assert_array_equal(out[i], ref[:, :, ::-1] if flip[i] else ref)


def test_without_data_root_cifar10_is_downloaded_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    """Issue 13.2: the main job needs no path. A local HTTP server stands in for the official URL."""
    import hashlib
    import http.server
    import threading

    from supernet.config import build_config
    from supernet.data.setup import default_root, load_dataset

    ds = fake_dataset()
    (tmp_path / "serve").mkdir()
    archive = write_tar(write_batches(ds, tmp_path / "src"), tmp_path / "serve" / cifar.ARCHIVE_NAME,
                        "cifar-10-batches-py")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "serve"), **kwargs)

        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(cifar, "URL", f"http://127.0.0.1:{server.server_address[1]}/{cifar.ARCHIVE_NAME}")
        monkeypatch.setattr(cifar, "MD5", hashlib.md5(archive.read_bytes()).hexdigest())
        cfg = build_config({}, [f"data.cache_dir={tmp_path / 'cache'}", f"supernet.num_classes={len(ds.classes)}"])
        assert default_root(cfg) == tmp_path / "cache" / "cifar10"
        assert_same(load_dataset(cfg), ds)
        assert (tmp_path / "cache" / "cifar10" / cifar.ARCHIVE_NAME).is_file() and len(requests) == 1
        assert_same(load_dataset(cfg), ds)  # reused: no second download
        assert len(requests) == 1
    finally:
        server.shutdown()
    # Offline with nothing cached: the error names where to put the files.
    monkeypatch.setattr(cifar, "URL", "http://127.0.0.1:9/none.tar.gz")
    offline = build_config({}, [f"data.cache_dir={tmp_path / 'other'}"])
    with pytest.raises(SupernetError, match=f"Download it manually into {tmp_path / 'other' / 'cifar10'}"):
        load_dataset(offline)
