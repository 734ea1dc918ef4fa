"""CIFAR-10 from the official pickles, an image folder, or a tar archive of either, with an array cache.

Every source is first turned into a :class:`_Tree` (relative posix path -> bytes), so directories and
archives go through one parser. Decoding 60k JPEGs takes ~10 s, so decoded arrays are cached as a plain
``.npz`` keyed by the source's identity; later runs start in well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from supernet.errors import SupernetError

try:  # numpy >= 2 renamed numpy.core; pickles name either module, we resolve both to the same objects
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
_BATCH_DIR = "cifar-10-batches-py"
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_BATCH_FILES = (*_TRAIN_BATCHES, "test_batch", "batches.meta")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_CACHE_VERSION = 1
LAYOUTS = (
    "data.root must be one of: (a) a directory holding the official python batches "
    f"({_BATCH_DIR}/data_batch_1..5, test_batch, batches.meta) or that directory itself; "
    "(b) an image folder with train/<class>/*.{jpg,png} and test/<class>/*; "
    "(c) a .tar.gz/.tgz of (a) or (b), optionally under one top-level directory; "
    f"(d) an empty or missing directory, into which {ARCHIVE_NAME} is downloaded when download=True"
)

# Unpickling runs whatever globals the file names; the official batches need only ndarray rebuilding.
_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")},  # protocol 5
}


@dataclass(frozen=True)
class ImageDataset:
    """Decoded images (N, 32, 32, 3) uint8 and int64 labels indexing ``classes``."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]


@dataclass(frozen=True)
class _Tree:
    """Files of a directory or an archive by relative posix path, so every layout parses the same way."""

    origin: str
    files: tuple[str, ...]
    dirs: frozenset[str]
    read: Callable[[str], bytes]


MAX_ARCHIVE_BYTES = 4 << 30  # uncompressed files of an archive; CIFAR-10 needs ~180 MB


def load_cifar10(root: str | Path, cache_dir: Path | None = None, download: bool = True) -> ImageDataset:
    """Load CIFAR-10 from any accepted layout (see ``LAYOUTS``), using the decoded-array cache."""
    root = Path(root).expanduser()
    if root.is_dir():
        found = _dir_tree(root)
        if found is not None:
            tree, listing = found
            key = _hash(["dir", str(root.resolve()), listing])
            return _cached(key, lambda: _parse(tree), cache_dir)
        archive = root / ARCHIVE_NAME
        if not archive.is_file():
            if not download or any(root.iterdir()):
                raise _no_data(root)
            archive = _download(root)
    elif root.is_file() and root.name.lower().endswith(_ARCHIVE_SUFFIXES):
        archive = root
    elif not root.exists() and download and not root.name.lower().endswith(_ARCHIVE_SUFFIXES):
        archive = _download(root)  # a missing directory is where the download goes; a missing archive is a typo
    else:
        raise _no_data(root)
    stat = archive.stat()
    key = _hash(["archive", str(archive.resolve()), stat.st_size, stat.st_mtime_ns])
    return _cached(key, lambda: _parse(_tar_tree(archive)), cache_dir)


def subset(ds: ImageDataset, n_train: int, n_test: int, seed: int) -> ImageDataset:
    """Deterministic random subset with classes as equal as the counts allow, for tiny end-to-end runs."""
    rng = np.random.default_rng(seed)
    tr = _balanced_pick(ds.train_y, n_train, rng, "n_train")
    te = _balanced_pick(ds.test_y, n_test, rng, "n_test")
    return ImageDataset(ds.train_x[tr], ds.train_y[tr], ds.test_x[te], ds.test_y[te], ds.classes)


def _balanced_pick(y: np.ndarray, n: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """Round-robin over classes in a random order, so any prefix is balanced; sorted to keep source order."""
    if not 0 <= n <= len(y):
        raise SupernetError(f"{what}={n} must be between 0 and the split size {len(y)}")
    perm = rng.permutation(len(y))
    by_label = np.argsort(y[perm], kind="stable")
    sorted_labels = y[perm][by_label]
    rank = np.empty(len(y), np.int64)
    rank[by_label] = np.arange(len(y)) - np.searchsorted(sorted_labels, sorted_labels)
    return np.sort(perm[np.argsort(rank, kind="stable")[:n]])


def _no_data(root: Path) -> SupernetError:
    state = "does not exist" if not root.exists() else "holds no CIFAR-10 data"
    return SupernetError(f"{root} {state}. {LAYOUTS}.")


# ---------------------------------------------------------------------------------------------- sources


def _dir_tree(root: Path) -> tuple[_Tree, list[tuple[str, int, int]]] | None:
    """Walk only the known layout paths (never a whole home directory) and stamp each file for the cache key."""
    for base in (root, root / _BATCH_DIR):
        if (base / "data_batch_1").is_file():
            names = [n for n in _BATCH_FILES if (base / n).is_file()]
            dirs: set[str] = set()
            break
    else:
        if not (root / "train").is_dir():
            return None
        base, names, dirs = root, [], set()
        for split in ("train", "test"):
            for dirpath, _, filenames in os.walk(root / split):
                rel = Path(dirpath).relative_to(root).as_posix()
                dirs.add(rel)
                names += [f"{rel}/{f}" for f in filenames]
    names.sort()
    listing = [(n, (s := (base / n).stat()).st_size, s.st_mtime_ns) for n in names]
    tree = _Tree(str(base), tuple(names), frozenset(dirs), lambda n: (base / n).read_bytes())
    return tree, listing


def _tar_tree(path: Path) -> _Tree:
    """Read all members in archive order: gzip cannot seek, so random access per member would be quadratic."""
    blobs: dict[str, bytes] = {}
    dirs: set[str] = set()
    total = 0
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                name = "/".join(p for p in PurePosixPath(member.name).parts if p not in ("/", "."))
                if member.isdir():
                    dirs.add(name)
                elif member.isfile():
                    total += member.size  # checked before the member is read: a small archive can expand hugely
                    if total > MAX_ARCHIVE_BYTES:
                        raise SupernetError(f"archive {path} holds more than {MAX_ARCHIVE_BYTES >> 30} GiB of files; "
                                            "CIFAR-10 is about 180 MB: this is not a CIFAR-10 archive")
                    if (f := tf.extractfile(member)) is not None:
                        blobs[name] = f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise SupernetError(f"cannot read archive {path}: {e}") from e
    tops = {n.split("/", 1)[0] for n in blobs}
    if len(tops) == 1 and (top := tops.pop()) not in ("train", "test") and all("/" in n for n in blobs):
        cut = len(top) + 1
        blobs = {n[cut:]: b for n, b in blobs.items()}
        dirs = {d[cut:] for d in dirs if d.startswith(top + "/")}
    return _Tree(str(path), tuple(sorted(blobs)), frozenset(dirs), blobs.__getitem__)


def _download(root: Path) -> Path:
    created = [d for d in (root, *root.parents) if not d.exists()]
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _fetch(root)
    except BaseException:
        for d in created:  # a failed download leaves no empty directory behind (innermost first)
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _fetch(root: Path) -> Path:
    dest = root / ARCHIVE_NAME
    # A name of its own per process: concurrent first runs (a sweep's Ray tasks) must not interleave writes.
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(URL, timeout=60) as response, open(part, "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                md5.update(chunk)
    except OSError as e:  # URLError, timeouts and disk errors are all OSError
        part.unlink(missing_ok=True)
        raise SupernetError(
            f"could not download CIFAR-10 from {URL} ({e}). Download it manually into {root}, or point "
            "data.root at an image folder or a .tar.gz of one (e.g. cifar10-jpeg.tar.gz)."
        ) from e
    if md5.hexdigest() != MD5:
        part.unlink(missing_ok=True)
        raise SupernetError(f"downloaded {URL} has md5 {md5.hexdigest()}, expected {MD5}; deleted it, retry")
    os.replace(part, dest)
    return dest


# ---------------------------------------------------------------------------------------------- parsing


def _parse(tree: _Tree) -> ImageDataset:
    if "data_batch_1" in tree.files:
        ds = _from_batches(tree)
    elif "train" in tree.dirs or any(f.startswith("train/") for f in tree.files):
        ds = _from_folder(tree)
    else:
        raise SupernetError(f"{tree.origin} holds no CIFAR-10 data. {LAYOUTS}.")
    _check(ds, tree.origin)
    return ds


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global but ndarray rebuilding, because unpickling a hostile file runs its code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return _ALLOWED_GLOBALS[module, name]


def _unpickle(tree: _Tree, name: str) -> dict[object, object]:
    where = f"{tree.origin}/{name}"
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(tree.read(name)), encoding="bytes").load()
    except Exception as e:  # untrusted bytes can fail in any way; all of them mean "bad file"
        raise SupernetError(f"{where}: not a valid CIFAR-10 python batch ({e})") from e
    if not isinstance(obj, dict):
        raise SupernetError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _batch(tree: _Tree, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(tree, name)
    data, labels = d.get(b"data"), d.get(b"labels")
    if not (
        isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
    ):
        raise SupernetError(f"{tree.origin}/{name}: b'data' must be a uint8 (N, 3072) array")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise SupernetError(f"{tree.origin}/{name}: b'labels' must be a list of {len(data)} ints")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(labels, dtype=np.int64)


def _from_batches(tree: _Tree) -> ImageDataset:
    missing = [n for n in _BATCH_FILES if n not in tree.files]
    if missing:
        raise SupernetError(f"{tree.origin}: missing official batch files {missing}")
    names = _unpickle(tree, "batches.meta").get(b"label_names")
    if not isinstance(names, list) or not all(isinstance(n, bytes) for n in names):
        raise SupernetError(f"{tree.origin}/batches.meta: b'label_names' must be a list of bytes")
    xs, ys = zip(*(_batch(tree, n) for n in _TRAIN_BATCHES), strict=True)
    test_x, test_y = _batch(tree, "test_batch")
    classes = tuple(n.decode() for n in names)
    return ImageDataset(np.concatenate(xs), np.concatenate(ys), np.ascontiguousarray(test_x), test_y, classes)


def _from_folder(tree: _Tree) -> ImageDataset:
    splits: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "test"):
        by_class = {d.split("/")[1]: [] for d in tree.dirs if d.count("/") == 1 and d.startswith(split + "/")}
        for f in tree.files:  # sorted, so each class list is sorted by path
            parts = f.split("/")
            if len(parts) == 3 and parts[0] == split:
                files = by_class.setdefault(parts[1], [])
                if parts[2].lower().endswith(_IMAGE_SUFFIXES):
                    files.append(f)
        if not by_class:
            raise SupernetError(f"{tree.origin}: missing the {split} split ({split}/<class>/*.jpg|png)")
        for cls, files in by_class.items():
            if not files:
                raise SupernetError(f"{tree.origin}/{split}/{cls}: class folder has no .jpg/.png images")
        splits[split] = by_class
    classes = tuple(sorted(splits["train"]))
    if tuple(sorted(splits["test"])) != classes:
        raise SupernetError(
            f"{tree.origin}: test classes {sorted(splits['test'])} differ from train classes {list(classes)}"
        )
    (train_x, train_y), (test_x, test_y) = (
        _decode_split(tree, splits[s], classes) for s in ("train", "test")
    )
    return ImageDataset(train_x, train_y, test_x, test_y, classes)


def _decode_split(
    tree: _Tree, by_class: dict[str, list[str]], classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    files = [f for c in classes for f in by_class[c]]
    x = np.empty((len(files), 32, 32, 3), np.uint8)
    for i, f in enumerate(files):
        x[i] = _decode_image(tree.read(f), f"{tree.origin}/{f}")
    y = np.repeat(np.arange(len(classes), dtype=np.int64), [len(by_class[c]) for c in classes])
    return x, y


def _decode_image(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.size != (32, 32):
                raise SupernetError(f"{where}: image is {im.size[0]}x{im.size[1]}, expected 32x32")
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as e:  # what Pillow raises for unreadable or truncated files
        raise SupernetError(f"{where}: cannot decode image ({e})") from e


def _check(ds: ImageDataset, origin: str) -> None:
    """One shape/range check for every source and for cache hits, so consumers can trust any ImageDataset."""
    for split, x, y in (("train", ds.train_x, ds.train_y), ("test", ds.test_x, ds.test_y)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3) or len(x) == 0:
            raise SupernetError(f"{origin}: {split} images must be a non-empty uint8 (N, 32, 32, 3) array")
        if y.dtype != np.int64 or y.shape != (len(x),):
            raise SupernetError(f"{origin}: {split} labels must be {len(x)} int64 values")
        if y.min() < 0 or y.max() >= len(ds.classes):
            raise SupernetError(f"{origin}: {split} labels must lie in [0, {len(ds.classes)})")


# ---------------------------------------------------------------------------------------------- cache


def _hash(identity: object) -> str:
    return hashlib.sha256(json.dumps([_CACHE_VERSION, identity]).encode()).hexdigest()[:24]


def cache_home(cache_dir: Path | None = None) -> Path:
    """``cache_dir`` when given, else $SUPERNET_CACHE, else ~/.cache/supernet."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SUPERNET_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "supernet"


def _cache_root(cache_dir: Path | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else cache_home() / "datasets"


def _cached(key: str, build: Callable[[], ImageDataset], cache_dir: Path | None) -> ImageDataset:
    path = _cache_root(cache_dir) / f"cifar10-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                classes = tuple(str(c) for c in z["classes"])
                ds = ImageDataset(z["train_x"], z["train_y"], z["test_x"], z["test_y"], classes)
            _check(ds, str(path))
            return ds
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, SupernetError) as e:
            warnings.warn(f"ignoring corrupt dataset cache {path} ({e}); rebuilding it", stacklevel=3)
    ds = build()
    _write_cache(path, ds)
    return ds


def _write_cache(path: Path, ds: ImageDataset) -> None:
    """Temp file + rename, so a crash or a concurrent run never leaves a half-written cache behind."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem, suffix=".tmp", delete=False) as f:
            tmp = f.name
            np.savez(
                f,
                train_x=ds.train_x,
                train_y=ds.train_y,
                test_x=ds.test_x,
                test_y=ds.test_y,
                classes=np.array(ds.classes, dtype=str),
            )
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache only costs speed
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        warnings.warn(f"could not write dataset cache {path} ({e})", stacklevel=3)
