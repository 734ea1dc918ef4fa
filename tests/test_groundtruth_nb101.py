from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from nb101_cells import (
    C1,
    C3,
    MP,
    NB101_DATA,
    README_HASH,
    README_MATRIX,
    README_OPS,
    REPO_ROOT,
    SHIPPED_RECORDS30,
    shipped_records30,
)
from supernet.errors import SupernetError
from supernet.groundtruth.nb101_convert import (
    ProtobufError,
    convert_official_nb101,
    decode_evaluation_data,
    decode_model_metrics,
    load_nb101_details,
    nb101_from_naslib_dummy,
    nb101_from_val500,
    parse_official_record,
)
from supernet.groundtruth.table import GroundTruth
from supernet.groundtruth.tfrecord import (
    crc32c,
    crc32c_segments,
    iter_records,
    mask_crc,
    read_records,
    write_records,
)
from supernet.spaces.nasbench101 import OPS, make_cell, module_hash

# --------------------------------------------------------------------------------------------
# An encoder written from nasbench/lib/model_metrics.proto alone, independent of the decoder.
# --------------------------------------------------------------------------------------------


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _double(field: int, x: float) -> bytes:
    return _tag(field, 1) + struct.pack("<d", x)


def _bytes(field: int, payload: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(payload)) + payload


def _evaluation(
    epoch: float, seconds: float, train: float, valid: float, test: float, ckpt: str = ""
) -> bytes:
    msg = _double(1, epoch) + _double(2, seconds) + _double(3, train) + _double(4, valid) + _double(5, test)
    return msg + (_bytes(6, ckpt.encode()) if ckpt else b"")


def _metrics(points: list[bytes], params: int, total: float) -> bytes:
    return b"".join(_bytes(1, p) for p in points) + _tag(2, 0) + _varint(params) + _double(3, total)


def _record(
    key: str,
    epochs: int,
    matrix: list[list[int]],
    ops: list[str],
    params: int,
    valid: float,
    test: float,
    seconds: float,
) -> bytes:
    points = [
        _evaluation(0.0, 0.0, 0.1, 0.1, 0.1),
        _evaluation(epochs / 2, seconds / 2, 0.5, valid / 2, test / 2),
        _evaluation(float(epochs), seconds, 1.0, valid, test, ckpt=f"/ckpt/{key}/model.ckpt-{epochs}"),
    ]
    adjacency = "".join(str(v) for row in matrix for v in row)
    payload = base64.b64encode(_metrics(points, params, seconds + 7.0)).decode()
    return json.dumps([key, epochs, adjacency, ",".join(ops), payload]).encode()


# 3 cells (one of 5 vertices) x 2 budgets x 3 repeats, records interleaved as a real file could be.
CELLS = {
    "aa" * 16: (
        [
            [0, 1, 1, 0, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        ["input", C3, C1, MP, C3, C1, "output"],
        1_234_567,
    ),
    "bb" * 16: (
        [[0, 1, 0, 0, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
        ["input", MP, C1, C3, "output"],
        20_000_001,  # above 2**24: float32 cannot hold it, the int64 array must
    ),
    "cc" * 16: (
        [
            [0, 1, 0, 0, 0, 0, 1],
            [0, 0, 1, 0, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        ["input", C1, C1, C1, C1, C1, "output"],
        8_555_530,
    ),
}
BUDGETS = (36, 108)


def _run_values(cell: int, budget: int, repeat: int) -> tuple[float, float, float]:
    valid = 0.80 + 0.05 * cell + 0.001 * budget / 108 + 0.003 * repeat
    return valid, valid - 0.01 * (repeat + 1), 1000.0 * budget / 108 + 10 * repeat + cell


def _official_records() -> list[bytes]:
    records = []
    for repeat in range(3):
        for budget in BUDGETS:
            for c, (key, (matrix, ops, params)) in enumerate(CELLS.items()):
                records.append(_record(key, budget, matrix, ops, params, *_run_values(c, budget, repeat)))
    return records


@pytest.fixture()
def official_file(tmp_path: Path) -> Path:
    path = tmp_path / "nasbench_tiny.tfrecord"
    assert write_records(path, _official_records()) == 18
    return path


def _record_offsets(path: Path) -> list[int]:
    return [offset for offset, _ in iter_records(path)]


# --------------------------------------------------------------------------------------------
# CRC32C and TFRecord framing
# --------------------------------------------------------------------------------------------


def test_crc32c_known_answers() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    # RFC 3720 (iSCSI) appendix B.4 test vectors.
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"56789", crc32c(b"1234")) == 0xE3069283
    assert mask_crc(0) == 0xA282EAD8


def test_crc32c_segments_match_the_scalar_version() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.bytes(int(n)) for n in rng.integers(0, 300, 200)] + [b"123456789"]
    lengths = np.array([len(p) for p in parts])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    got = crc32c_segments(np.frombuffer(b"".join(parts), np.uint8), starts, lengths)
    assert got.tolist() == [crc32c(p) for p in parts]
    assert got[-1] == 0xE3069283


def test_tfrecord_round_trip_across_chunk_boundaries(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    records = [rng.bytes(int(n)) for n in rng.integers(0, 500, 50)] + [b"", rng.bytes(5000)]
    path = tmp_path / "r.tfrecord"
    write_records(path, records, batch=7)
    assert list(read_records(path)) == records
    assert [d for _, d in iter_records(path, chunk_bytes=64)] == records  # records span chunks
    offsets = _record_offsets(path)
    assert offsets[0] == 0 and offsets[1] == 16 + len(records[0])
    assert path.stat().st_size == sum(16 + len(r) for r in records)


def test_truncated_file_names_file_and_offset(official_file: Path) -> None:
    offsets = _record_offsets(official_file)
    data = official_file.read_bytes()
    for cut, chunk in ((offsets[5] + 30, 1 << 22), (offsets[5] + 5, 1 << 22), (offsets[5] + 30, 50)):
        bad = official_file.with_name(f"cut{cut}.tfrecord")
        bad.write_bytes(data[:cut])
        with pytest.raises(SupernetError, match=rf"{bad.name} is truncated at byte offset {offsets[5]}\b"):
            list(iter_records(bad, chunk_bytes=chunk))
    with pytest.raises(SupernetError, match="truncated at byte offset"):
        convert_official_nb101(bad, official_file.with_name("t.npz"))


def test_flipped_byte_names_file_and_offset(official_file: Path) -> None:
    offsets = _record_offsets(official_file)
    data = bytearray(official_file.read_bytes())
    flipped = bytearray(data)
    flipped[offsets[7] + 12 + 40] ^= 0x04  # inside record 7's data
    bad = official_file.with_name("flip.tfrecord")
    bad.write_bytes(bytes(flipped))
    with pytest.raises(SupernetError, match=rf"flip.tfrecord is corrupt at byte offset {offsets[7]}: .*data"):
        list(read_records(bad))
    with pytest.raises(SupernetError, match=rf"corrupt at byte offset {offsets[7]}"):
        convert_official_nb101(bad, official_file.with_name("f.npz"))
    # Without data CRCs the damaged record is returned as is.
    assert sum(1 for _ in read_records(bad, verify_crc=False)) == 18
    # A damaged length is caught even without data CRCs: every later offset depends on it.
    flipped = bytearray(data)
    flipped[offsets[3] + 1] ^= 0x01
    bad.write_bytes(bytes(flipped))
    for verify in (True, False):
        with pytest.raises(SupernetError, match=rf"corrupt at byte offset {offsets[3]}: .*length"):
            list(read_records(bad, verify_crc=verify))
    flipped = bytearray(data)
    flipped[offsets[2] + 7] ^= 0x80  # a huge length, past the end of the file
    bad.write_bytes(bytes(flipped))
    with pytest.raises(SupernetError, match=rf"corrupt at byte offset {offsets[2]}: .*length"):
        list(read_records(bad))


def test_missing_file() -> None:
    with pytest.raises(SupernetError, match="does not exist"):
        list(read_records("/nonexistent/x.tfrecord"))


# --------------------------------------------------------------------------------------------
# Record payload and protobuf
# --------------------------------------------------------------------------------------------


def test_decode_model_metrics() -> None:
    points = [_evaluation(0.0, 0.0, 0.1, 0.2, 0.3), _evaluation(108.0, 1500.5, 1.0, 0.93, 0.92, "/m/c-1")]
    # An unknown varint field 9 and an unknown length field 10 must be skipped.
    raw = _metrics(points, 2_694_282, 1600.25) + _tag(9, 0) + _varint(300) + _bytes(10, b"xyz")
    m = decode_model_metrics(raw)
    assert m.trainable_parameters == 2_694_282 and m.total_time == 1600.25
    assert len(m.evaluation_data) == 2
    last = m.evaluation_data[-1]
    assert (last.current_epoch, last.training_time, last.train_accuracy) == (108.0, 1500.5, 1.0)
    assert (last.validation_accuracy, last.test_accuracy, last.checkpoint_path) == (0.93, 0.92, "/m/c-1")
    # Field order and repeats must not matter: the decoder's fast path for the usual layout has to
    # agree with the general field loop (reverse order; a later field 4 overrides the first).
    fwd = _evaluation(4.0, 50.0, 0.6, 0.55, 0.5, "c")
    rev = _bytes(6, b"c") + b"".join(
        _double(f, x) for f, x in ((5, 0.5), (4, 0.55), (3, 0.6), (2, 50.0), (1, 4.0))
    )
    assert decode_evaluation_data(fwd) == decode_evaluation_data(rev)
    assert decode_evaluation_data(fwd + _double(4, 0.75)).validation_accuracy == 0.75
    assert decode_evaluation_data(b"") == decode_evaluation_data(_tag(7, 0) + _varint(1))
    with pytest.raises(ProtobufError, match="wire type"):
        decode_model_metrics(_tag(2, 1) + struct.pack("<d", 1.0))  # params as a double: wrong schema
    with pytest.raises(ProtobufError):
        decode_model_metrics(_tag(3, 1) + b"\x00\x00")  # total_time cut short


def test_parse_official_record() -> None:
    key, (matrix, ops, params) = next(iter(CELLS.items()))
    rec = parse_official_record(_record(key, 108, matrix, ops, params, 0.9, 0.89, 100.0))
    assert rec.module_hash == key and rec.epochs == 108 and rec.operations == tuple(ops)
    assert rec.adjacency == "".join(str(v) for row in matrix for v in row)
    final = decode_model_metrics(rec.metrics).evaluation_data[2]
    assert (final.validation_accuracy, final.test_accuracy, final.training_time) == (0.9, 0.89, 100.0)


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------


def test_convert_official(official_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "nb101.npz"
    summary = convert_official_nb101(official_file, out)
    assert (summary.cells, summary.records, summary.budgets) == (3, 18, BUDGETS)
    gt = GroundTruth.load(out)
    assert gt.keys() == list(CELLS) and gt.columns == ("cifar10/valid", "cifar10/test", "cifar10/params")
    details = load_nb101_details(out)
    assert details.keys.tolist() == list(CELLS) and details.budgets == BUDGETS
    assert details.op_names == OPS
    for c, (key, (matrix, ops, params)) in enumerate(CELLS.items()):
        assert gt.official_index(key) == c  # first-appearance order in the file
        runs = [_run_values(c, 108, r) for r in range(3)]
        assert gt.accuracy(key, "valid") == pytest.approx(100 * np.mean([r[0] for r in runs]), abs=1e-4)
        assert gt.accuracy(key) == pytest.approx(100 * np.mean([r[1] for r in runs]), abs=1e-4)
        assert gt.accuracy(key, "params") == pytest.approx(params, rel=1e-7)
        row = details.row(key)
        assert details.trainable_parameters[row] == params
        n = len(ops)
        assert details.num_vertices[row] == n
        assert details.matrix[row, :n, :n].tolist() == matrix and not details.matrix[row, n:].any()
        assert details.matrix[row, :, n:].sum() == 0
        assert [OPS[i] for i in details.ops[row, : n - 2]] == ops[1:-1]
        assert (details.ops[row, n - 2 :] == 255).all()
        for b, budget in enumerate(BUDGETS):
            for r in range(3):
                valid, test, seconds = _run_values(c, budget, r)
                assert details.final_validation_accuracy[row, b, r] == pytest.approx(100 * valid, abs=1e-4)
                assert details.final_test_accuracy[row, b, r] == pytest.approx(100 * test, abs=1e-4)
                assert details.final_training_time[row, b, r] == pytest.approx(seconds, rel=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".tfrecord"] == ["nb101.npz"]  # no leftovers
    # Best test accuracy is cell 2, worst cell 0.
    assert [gt.rank(k) for k in CELLS] == [0, 1, 2]


def test_convert_requires_complete_budgets(official_file: Path, tmp_path: Path) -> None:
    with pytest.raises(SupernetError, match="0 runs at 4 epochs"):
        convert_official_nb101(official_file, tmp_path / "x.npz", full=True)
    short = tmp_path / "short.tfrecord"
    write_records(short, _official_records()[:-1])  # the last 108-epoch run of cell cc is missing
    with pytest.raises(SupernetError, match=f"cell {'cc' * 16} has 2 runs at 108 epochs"):
        convert_official_nb101(short, tmp_path / "x.npz")
    junk = tmp_path / "junk.tfrecord"
    write_records(junk, _official_records()[:4] + [b'["x", 108]'])
    with pytest.raises(SupernetError, match=r"record 4 at byte offset \d+ is not a NAS-Bench-101 record"):
        convert_official_nb101(junk, tmp_path / "x.npz")


def test_convert_script(official_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.npz"
    script = REPO_ROOT / "scripts" / "convert_nb101.py"
    done = subprocess.run(
        [sys.executable, str(script), str(official_file), str(out), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "3 cells from 18 records" in done.stdout and len(GroundTruth.load(out)) == 3
    done = subprocess.run(
        [sys.executable, str(script), str(official_file), str(out), "--full", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


# --------------------------------------------------------------------------------------------
# Public subsets in shared/data
# --------------------------------------------------------------------------------------------


def _data(name: str) -> Path:
    """A NASLib file from ../shared/data: a skip without it, a failure under CI=true."""
    return require_shared(NB101_DATA / name, "public NAS-Bench-101 subset")


def test_readme_cell_through_tfrecord(tmp_path: Path) -> None:
    """The README's reference cell, written as official records, converts to its published numbers."""
    matrix, ops = README_MATRIX, README_OPS
    runs = [(0.92418, 0.92117), (0.92458, 0.91907), (0.93049, 0.92157)]
    src, out = tmp_path / "readme.tfrecord", tmp_path / "readme.npz"
    write_records(src, [_record(README_HASH, 108, matrix, ops, 8_555_530, v, t, 1500.0) for v, t in runs])
    convert_official_nb101(src, out)
    gt = GroundTruth.load(out)
    assert gt.accuracy(README_HASH, "params") == 8_555_530
    assert gt.accuracy(README_HASH) == pytest.approx((92.117 + 91.907 + 92.157) / 3, abs=1e-4)
    assert gt.accuracy(README_HASH, "valid") == pytest.approx((92.418 + 92.458 + 93.049) / 3, abs=1e-4)
    details = load_nb101_details(out)
    np.testing.assert_allclose(details.final_test_accuracy[0, 0], [92.117, 91.907, 92.157], atol=1e-4)
    assert details.matrix[0].tolist() == matrix
    assert [details.op_names[i] for i in details.ops[0]] == ops[1:-1]


def test_naslib_dummy(tmp_path: Path) -> None:
    path = _data("nb101_dummy.json")
    entries = json.loads(path.read_text())
    out = tmp_path / "dummy.npz"
    gt = nb101_from_naslib_dummy(path, out)
    assert len(gt) == 30 and gt.source == str(out)
    assert gt.keys() == [e["hash"] for e in entries]
    key = "ff92c322c5d9d3d587d9c146a63d0807"  # the file's first cell
    tests = [0.9231770634651184, 0.9192708134651184, 0.9205729365348816]
    valids = [0.9255809187889099, 0.9279847741127014, 0.9246794581413269]
    assert gt.accuracy(key, "params") == 6_315_018
    assert gt.accuracy(key) == pytest.approx(100 * np.mean(tests), abs=1e-4)
    assert gt.accuracy(key, "valid") == pytest.approx(100 * np.mean(valids), abs=1e-4)
    details = load_nb101_details(out)
    assert details.trainable_parameters[0] == 6_315_018 and details.budgets == (108,)
    np.testing.assert_allclose(details.final_test_accuracy[0, 0], 100 * np.array(tests), atol=1e-4)
    np.testing.assert_allclose(details.final_training_time[0, 0], [1396.1379, 1395.74, 1386.1831], atol=1e-3)
    for i, e in enumerate(entries):
        n = len(e["module_operations"])
        assert details.matrix[i, :n, :n].tolist() == e["module_adjacency"]
        assert [details.op_names[j] for j in details.ops[i, : n - 2]] == e["module_operations"][1:-1]
        runs = e["epochs"]["108"]
        mean_test = 100 * np.mean([r["final_test_accuracy"] for r in runs])
        assert gt.accuracy(e["hash"]) == pytest.approx(mean_test, abs=1e-4)
    # In-memory and on-disk tables agree.
    mem = nb101_from_naslib_dummy(path)
    assert mem.keys() == gt.keys()
    np.testing.assert_array_equal(mem.accuracy(mem.keys()), gt.accuracy(gt.keys()))


def test_val500() -> None:
    path = _data("nb101_500_val.json")
    entries = json.loads(path.read_text())
    hashes = [module_hash(make_cell(e["matrix"], e["ops"])) for e in entries]
    gt = nb101_from_val500(path)
    assert len(gt) == len(set(hashes)) == 292  # NASLib drew many specs of the same pruned cell
    assert gt.keys() == list(dict.fromkeys(hashes))
    assert gt.columns == ("cifar10/valid",)
    acc = gt.accuracy(gt.keys(), "valid")
    assert acc.min() == pytest.approx(73.38, abs=0.01) and acc.max() == pytest.approx(94.71, abs=0.01)
    # Duplicates are draws of the cell's 3 official runs: the row is the mean of the distinct ones.
    for key in (hashes[0], max(set(hashes), key=hashes.count)):
        drawn = {e["val_accuracy"] for e, h in zip(entries, hashes, strict=True) if h == key}
        assert gt.accuracy(key, "valid") == pytest.approx(np.mean(sorted(drawn)), abs=1e-4)
    assert hashes.count(max(set(hashes), key=hashes.count)) > 3  # so the dedup rule is exercised
    with pytest.raises(SupernetError, match="no ground truth for dataset 'cifar10' split 'test'"):
        gt.accuracy(hashes[0])


def test_stored_cells_hash_to_their_keys() -> None:
    """Matrices and ops stored in the shipped 30-record table (nb101_dummy.json converted) rebuild cells
    whose official hash is the key, and carry the published parameter counts."""
    records = shipped_records30()
    assert len(records) == 30
    for r in records:
        assert module_hash(make_cell(r["module_adjacency"], r["module_operations"])) == r["hash"]
    first = records[0]  # nb101_dummy.json's first cell
    assert (first["hash"], first["trainable_parameters"]) == ("ff92c322c5d9d3d587d9c146a63d0807", 6_315_018)


def test_shipped_records30_is_the_converted_shared_file(tmp_path: Path) -> None:
    """The shipped table is exactly what converting ../shared's nb101_dummy.json gives today."""
    converted = nb101_from_naslib_dummy(_data("nb101_dummy.json"), tmp_path / "dummy.npz")
    shipped = Path(str(resources.files("supernet.groundtruth") / "tables" / SHIPPED_RECORDS30))
    with np.load(shipped, allow_pickle=False) as a, np.load(converted.source, allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
