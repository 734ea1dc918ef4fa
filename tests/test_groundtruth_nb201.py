from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import require_shared
from supernet.errors import SupernetError
from supernet.groundtruth.nb201_convert import convert_official_nb201
from supernet.groundtruth.table import GroundTruth, write_table
from supernet.spaces.nasbench201 import NB201Space

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data" / "nasbench201"
RESNET = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
COLUMNS = (
    "cifar10/valid",
    "cifar10/test",
    "cifar100/valid",
    "cifar100/test",
    "imagenet16-120/valid",
    "imagenet16-120/test",
)


@pytest.fixture(scope="module")
def gt() -> GroundTruth:
    return GroundTruth.nasbench201()


def test_shipped_table(gt: GroundTruth) -> None:
    assert len(gt) == 15_625
    assert gt.columns == COLUMNS
    assert gt.keys()[0] == INDEX0 and gt.official_index(INDEX0) == 0
    assert set(gt.keys()) == {str(a) for a in NB201Space()}
    assert gt.accuracy(RESNET, split="valid") == pytest.approx(91.553, abs=1e-3)
    assert gt.accuracy(RESNET) == pytest.approx(94.363, abs=1e-3)
    test = gt.accuracy(gt.keys())
    assert isinstance(test, np.ndarray) and test.shape == (15_625,)
    assert test.max() == pytest.approx(94.3733, abs=1e-4)
    assert gt.accuracy(gt.keys(), dataset="cifar100").max() == pytest.approx(73.5133, abs=1e-4)
    assert gt.accuracy(gt.keys(), "valid", "imagenet16-120").max() == pytest.approx(46.7333, abs=1e-4)


def test_ranks(gt: GroundTruth) -> None:
    keys = gt.keys()
    acc = gt.accuracy(keys)
    # The top two archs tie at 94.3733; the higher official index (13714) wins the tie.
    top = [k for k, a in zip(keys, acc, strict=True) if a == acc.max()]
    best = max(top, key=gt.official_index)
    assert len(top) == 2 and gt.official_index(best) == 13_714
    assert gt.rank(best) == 15_624 and gt.rank(min(top, key=gt.official_index)) == 15_623
    ranks = gt.ranks(keys)
    assert sorted(ranks.tolist()) == list(range(15_625))
    assert np.all(np.diff(acc[np.argsort(ranks)]) >= 0)
    assert gt.ranks([best, RESNET]).tolist() == [15_624, gt.rank(RESNET)]
    # Ties are broken by official index: among equal accuracies the lower index ranks lower.
    values, counts = np.unique(acc, return_counts=True)
    tied = [k for k, a in zip(keys, acc, strict=True) if a == values[np.argmax(counts)]]
    tied_ranks = [gt.rank(k) for k in tied]
    assert tied_ranks == sorted(tied_ranks) and len(tied) > 1


def test_lookup_errors(gt: GroundTruth) -> None:
    assert RESNET in gt and "nope" not in gt
    with pytest.raises(SupernetError, match="'nope' is not in ground-truth table"):
        gt.accuracy(["nope"])
    with pytest.raises(
        SupernetError, match="datasets: cifar10, cifar100, imagenet16-120; splits: test, valid"
    ):
        gt.accuracy(RESNET, dataset="svhn")
    with pytest.raises(SupernetError, match="splits: test, valid"):
        gt.rank(RESNET, split="train")


def test_corrupt_tables_are_rejected(gt: GroundTruth, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00\x01not a table" * 100)
    shipped = Path(gt.source).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(shipped[: len(shipped) // 2])
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    for path in (garbage, truncated, other):
        with pytest.raises(
            SupernetError, match=f"ground-truth table {path} is corrupt or not a supernet table"
        ):
            GroundTruth.load(path)
    with pytest.raises(SupernetError, match="does not exist"):
        GroundTruth.load(tmp_path / "missing.npz")


def _run(dataset: str, seed: int, acc: dict[str, float]) -> dict[str, Any]:
    return {
        "name": dataset,
        "seed": seed,
        "epochs": 200,
        "params": 0.1,
        "flop": 15.6,
        "latency": None,
        "net_state_dict": None,
        "train_acc1es": {199: 99.0},
        "eval_names": list(acc),
        "eval_acc1es": acc,
        "eval_losses": {k: 0.5 for k in acc},
    }


def _arch(index: int, arch_str: str, base: float) -> dict[str, Any]:
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for seed, delta in ((777, 0.0), (888, 1.0)):
        results[("cifar10-valid", seed)] = _run(
            "cifar10-valid", seed, {"x-valid@199": base + delta, "ori-test@199": -1.0}
        )
        results[("cifar10", seed)] = _run("cifar10", seed, {"ori-test@199": base + 10 + delta})
        for name, off in (("cifar100", 20), ("ImageNet16-120", 30)):
            accs = {
                "x-valid@199": base + off + delta,
                "x-test@199": base + off + 5 + delta,
                "ori-test@199": -1.0,
            }
            results[(name, seed)] = _run(name, seed, accs)
    seeds = {name: [777, 888] for name in ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")}
    return {
        "arch_index": index,
        "arch_str": arch_str,
        "all_results": results,
        "dataset_seed": seeds,
        "clear_net_done": True,
    }


def test_convert_official_structure(tmp_path: Path) -> None:
    archs = [INDEX0, RESNET, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    blob = {
        "meta_archs": archs,
        "arch2infos": {
            i: {"less": {}, "full": _arch(i, s, 10.0 * i)} for i, s in reversed(list(enumerate(archs)))
        },
        "evaluated_indexes": [0, 1, 2],
        "total_archs": 3,
    }
    pth = tmp_path / "NAS-Bench-201-tiny.pth"
    torch.save(blob, pth)
    out = tmp_path / "tiny.npz"
    convert_official_nb201(pth, out)
    gt = GroundTruth.load(out)
    assert gt.keys() == archs and gt.columns == COLUMNS
    assert [gt.official_index(s) for s in archs] == [0, 1, 2]
    expected = {
        "cifar10/valid": 0.5,
        "cifar10/test": 10.5,
        "cifar100/valid": 20.5,
        "cifar100/test": 25.5,
        "imagenet16-120/valid": 30.5,
        "imagenet16-120/test": 35.5,
    }
    for column, value in expected.items():
        dataset, split = column.split("/")
        got = gt.accuracy(archs, split=split, dataset=dataset)
        np.testing.assert_allclose(got, [value, value + 10, value + 20], rtol=1e-6)
    assert gt.rank(archs[2]) == 2


class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (print, ("this must never run",))


def test_convert_refuses_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pth = tmp_path / "evil.pth"
    torch.save({"arch2infos": {0: _Payload()}}, pth)
    with pytest.raises(SupernetError, match="it names code"):
        convert_official_nb201(pth, tmp_path / "out.npz")
    assert "must never run" not in capsys.readouterr().out
    assert not (tmp_path / "out.npz").exists()


def test_convert_rejects_wrong_structure(tmp_path: Path) -> None:
    pth = tmp_path / "wrong.pth"
    torch.save({"arch2infos": {0: {"full": {"arch_str": RESNET}}}}, pth)
    with pytest.raises(SupernetError, match="NAS-Bench-201 structure"):
        convert_official_nb201(pth, tmp_path / "out.npz")
    torch.save([1, 2], pth)
    with pytest.raises(SupernetError, match="no 'arch2infos'"):
        convert_official_nb201(pth, tmp_path / "out.npz")


def test_write_table_rejects_duplicates(tmp_path: Path) -> None:
    with pytest.raises(SupernetError, match="unique"):
        write_table(tmp_path / "t.npz", ["a", "a"], [0, 1], {"x/test": [1.0, 2.0]})


def test_shipped_table_matches_shared_data(gt: GroundTruth) -> None:
    require_shared(DATA, "public NAS-Bench-201 data")
    with open(DATA / "nas-landscapes" / "cifar10_avg.csv", newline="") as f:
        official = {row["arch_str"]: int(row["index"]) for row in csv.DictReader(f)}
    assert {k: gt.official_index(k) for k in official} == official
    for dataset, stem in (("cifar10", "cifar10"), ("cifar100", "cifar100"), ("imagenet16-120", "imagenet")):
        table = json.loads((DATA / "genius" / f"nasbench201_{stem}.json").read_text())
        keys = list(table)
        for split, field in (("valid", "val_acc_200"), ("test", "test_acc_200")):
            want = np.array([table[k][field] for k in keys])
            np.testing.assert_allclose(gt.accuracy(keys, split, dataset), want, rtol=1e-6)
        if dataset == "cifar10":
            # GENIUS ranks 1..N by test accuracy descending; ours is ascending with the best at N-1.
            best = min(keys, key=lambda k: table[k]["rank"])
            assert gt.rank(best) == 15_624
