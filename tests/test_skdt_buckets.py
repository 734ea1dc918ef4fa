"""s-KdT cells of the shipped ground truth equal exact rational arithmetic on the published values (issue 12, item 1).

Tables store float32 (``groundtruth/table.py``): 91.10 % is stored as 91.0999985. The expected cell of a value is
computed here with ``fractions`` from the value the benchmark measured: a mean over at most 3 seeds of
(correct / N images), i.e. a multiple of 1/(6N) as a fraction. The stored (or published) number is rounded to
that grid -- the rounding is unambiguous, it lies within 1 % of a grid step of it -- and the cell is
floor(exact value / threshold). The published decimals themselves are not exact: the NB201 file says
"92.19999999999999" for the 3-seed mean 92.2 and "40.99999992879232" for 41.0 (per-seed float32 upstream).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from importlib import resources

import numpy as np
import pytest

from conftest import SHARED_DATA, require_shared
from supernet.evaluate.measures import _sparse_cells
from supernet.evaluate.metrics import sparse_kendall_tau, sparse_ranks
from supernet.groundtruth.table import GroundTruth

THRESHOLDS = (1e-3, 1e-2)  # the paper's (and the training logs') 0.1 %, the authors' analysis scripts' 1 %

# Test-set / validation-set sizes of NAS-Bench-201 (Dong & Yang, ICLR 2020): CIFAR-10-valid holds out 25,000
# training images, CIFAR-100 and ImageNet16-120 split their test sets in two halves.
NB201_IMAGES = {
    "cifar10/valid": 25_000,
    "cifar10/test": 10_000,
    "cifar100/valid": 5_000,
    "cifar100/test": 5_000,
    "imagenet16-120/valid": 3_000,
    "imagenet16-120/test": 3_000,
}
GENIUS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}
# NAS-Bench-101 evaluates 78 batches of 128 images: every run's accuracy is a multiple of 1/9984
NB101_IMAGES = 9_984

# Cells that moved against the previous code, floor(p / 100 / threshold + 1e-6) on the float32 table, at 1e-3.
NB201_CHANGED = {
    "cifar10/valid": 105,
    "cifar10/test": 304,
    "cifar100/valid": 587,
    "cifar100/test": 625,
    "imagenet16-120/valid": 1040,
    "imagenet16-120/test": 1005,
}


def _exact_cells(values: list[Fraction], threshold: float) -> np.ndarray:
    """floor(p / threshold) in exact arithmetic, ``values`` in percent, the threshold as the decimal written."""
    width = 100 * Fraction(repr(threshold))
    return np.array([math.floor(v / width) for v in values], dtype=np.int64)


def _on_grid(numbers: list[Fraction], step: Fraction) -> list[Fraction]:
    """Each number rounded to the nearest multiple of ``step``, checking that it was within 1 % of a step."""
    out = []
    for x in numbers:
        k = round(x / step)
        assert abs(x / step - k) < Fraction(1, 100), (
            f"{float(x)} is not a multiple of {step} within float noise"
        )
        out.append(k * step)
    return out


def _old_cells(values: np.ndarray, threshold: float) -> np.ndarray:
    """The previous code: fractions floored with an epsilon of 1e-6 cells."""
    frac = values / 100.0 if 1.0 < float(np.mean(values)) < 100.0 else values
    return np.floor(frac / threshold + 1e-6).astype(np.int64)


def _dense(cells: np.ndarray) -> list[int]:
    return np.unique(cells, return_inverse=True)[1].reshape(-1).tolist()


@pytest.fixture(scope="module")
def nb201() -> GroundTruth:
    return GroundTruth.nasbench201()


def _column(gt: GroundTruth, column: str) -> np.ndarray:
    dataset, split = column.split("/")
    return np.asarray(gt.accuracy(gt.keys(), split=split, dataset=dataset), dtype=np.float64)


def _nb201_exact(stored: np.ndarray, column: str) -> list[Fraction]:
    """The measured value behind each number: a multiple of 1/(6 N) as a fraction, 100/(6 N) in percent."""
    return _on_grid([Fraction(x) for x in stored.tolist()], Fraction(100, 6 * NB201_IMAGES[column]))


# --- (a) NAS-Bench-201: all 15,625 architectures, every column -------------------------------------------------


def test_nb201_table_has_the_expected_columns(nb201: GroundTruth) -> None:
    assert len(nb201) == 15_625
    assert set(nb201.columns) == set(NB201_IMAGES)


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("column", sorted(NB201_IMAGES))
def test_nb201_cells_are_exact(nb201: GroundTruth, column: str, threshold: float) -> None:
    stored = _column(nb201, column)
    assert nb201._values.dtype == np.float32  # the trap this guards against
    expected = _exact_cells(_nb201_exact(stored, column), threshold)
    got = _sparse_cells(stored, threshold).astype(np.int64)
    wrong = np.flatnonzero(got != expected)
    assert wrong.size == 0, f"{wrong.size} cells differ, e.g. {stored[wrong[:3]].tolist()}"
    assert sparse_ranks(stored, threshold).tolist() == _dense(expected)


@pytest.mark.parametrize("column", sorted(NB201_IMAGES))
def test_nb201_published_values(nb201: GroundTruth, column: str) -> None:
    """The shipped table is float32 of the published file; both give the same exact value and the same cells."""
    dataset, split = column.split("/")
    path = require_shared(SHARED_DATA / "nasbench201" / "genius" / f"nasbench201_{GENIUS[dataset]}.json")
    with open(path) as f:
        published = json.load(f, parse_float=str)  # keep the decimals as written
    field = {"valid": "val_acc_200", "test": "test_acc_200"}[split]
    text = [published[k][field] for k in nb201.keys()]
    stored = _column(nb201, column)
    assert np.array_equal(stored, np.float32([float(t) for t in text]).astype(np.float64))
    exact = _nb201_exact(stored, column)
    assert _on_grid([Fraction(t) for t in text], Fraction(100, 6 * NB201_IMAGES[column])) == exact
    expected = _exact_cells(exact, 1e-3)
    # the published float64 numbers, noise included, land in the same cells as the float32 table
    assert np.array_equal(_sparse_cells(np.array([float(t) for t in text]), 1e-3), expected)


def test_nb201_published_noise_example() -> None:
    """Why the expected cell is not the published decimal read literally: that would put 92.2 in 921."""
    path = require_shared(SHARED_DATA / "nasbench201" / "genius" / "nasbench201_cifar10.json")
    with open(path) as f:
        published = json.load(f, parse_float=str)
    text = [v["test_acc_200"] for v in published.values()]
    assert "92.19999999999999" in text
    assert sparse_ranks([92.19999999999999, 92.2, 92.1999, 90.0]).tolist() == [2, 2, 1, 0]


# --- (b) NAS-Bench-101: the shipped tables and synthetic values -----------------------------------------------


def _nb101_table(name: str) -> GroundTruth:
    with resources.as_file(resources.files("supernet.groundtruth") / "tables" / f"{name}.npz") as p:
        return GroundTruth.load(p)


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("nb101-val500", "cifar10/valid"),
        ("nb101-records30", "cifar10/valid"),
        ("nb101-records30", "cifar10/test"),
    ],
)
def test_nb101_tables_are_exact(table: str, column: str, threshold: float) -> None:
    # val500: mean of 1..3 distinct runs, records30: of 3 runs -> a multiple of 1/(6 x 9984), 100/59904 %
    stored = _column(_nb101_table(table), column)
    exact = _on_grid([Fraction(x) for x in stored.tolist()], Fraction(100, 6 * NB101_IMAGES))
    expected = _exact_cells(exact, threshold)
    assert np.array_equal(_sparse_cells(stored, threshold), expected)
    assert sparse_ranks(stored, threshold).tolist() == _dense(expected)
    assert np.array_equal(_old_cells(stored, threshold), expected)  # no border values in these subsets


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_multiples_of_1_30000_in_float32(threshold: float) -> None:
    """3 runs x 10k images: every k / 30000 from 0 to 1, as float32 percent and as float32 fractions."""
    k = np.arange(30_001)
    expected = _exact_cells([Fraction(int(i), 300) for i in k], threshold)
    percent = np.float32(k / 300).astype(np.float64)
    assert np.array_equal(_sparse_cells(percent, threshold), expected)
    fractions = np.float32(k / 30_000).astype(np.float64)
    assert float(np.mean(fractions)) == pytest.approx(0.5)  # read as fractions
    assert np.array_equal(_sparse_cells(fractions, threshold), expected)


def test_multiples_of_1_30000_old_code_missed_1_3_percent() -> None:
    k = np.arange(30_001)
    percent = np.float32(k / 300).astype(np.float64)
    changed = np.mean(_old_cells(percent, 1e-3) != k // 30)
    assert changed == pytest.approx(0.0125, abs=0.001)  # 376 of 30,001: a third of the 1,001 borders


def test_nb101_three_run_means_at_cell_borders() -> None:
    """Official NB101 cells: three float32 runs of k / 9984, averaged, x 100, stored as float32 (nb101_convert).

    A 3-run mean lies on a 0.1 % border only at multiples of 12.5 %; about 2 % of the splits of such a sum are
    stored one float32 ulp BELOW the border, which a half-ulp rule would miss. Sums one or two images off a
    border (2.7e-7 away, the closest a real NB101 value gets) must stay out.
    """
    rng = np.random.default_rng(0)
    sums = np.array([3 * NB101_IMAGES * m // 8 + d for m in range(9) for d in (-2, -1, 0, 1, 2)])
    sums = np.repeat(sums[(sums >= 0) & (sums <= 3 * NB101_IMAGES)], 4_000)
    runs = np.zeros((sums.size, 3), dtype=np.int64)
    left = sums.copy()
    for j in range(2):
        lo = np.maximum(0, left - NB101_IMAGES * (2 - j))
        hi = np.minimum(NB101_IMAGES, left)
        runs[:, j] = lo + (rng.random(sums.size) * (hi - lo + 1)).astype(np.int64)
        left -= runs[:, j]
    runs[:, 2] = left
    assert ((runs >= 0) & (runs <= NB101_IMAGES)).all()
    per_run = np.float32(runs / NB101_IMAGES).astype(np.float64) * 100.0
    stored = np.float32(per_run.mean(axis=1)).astype(np.float64)
    exact_percent = [Fraction(100 * int(s), 3 * NB101_IMAGES) for s in sums]
    assert (stored < np.float32([float(x) for x in exact_percent])).any()  # the one-ulp-below case occurs
    for threshold in THRESHOLDS:
        assert np.array_equal(_sparse_cells(stored, threshold), _exact_cells(exact_percent, threshold))


# --- (c) what changed, and the slack window itself -------------------------------------------------------------


def test_nb201_cells_changed_against_the_old_code(nb201: GroundTruth) -> None:
    changed = {}
    for column in NB201_IMAGES:
        stored = _column(nb201, column)
        changed[column] = int(np.sum(_old_cells(stored, 1e-3) != _sparse_cells(stored, 1e-3)))
    assert changed == NB201_CHANGED


def test_slack_window_is_one_and_a_half_float32_ulps() -> None:
    border = np.float32(91.1)  # 91.0999985, 0.2 ulp below 91.1
    below = [np.nextafter(border, np.float32(0))]  # 1.2 ulps below 91.1: still on the border
    below.append(np.nextafter(below[0], np.float32(0)))  # 2.2 ulps below: the cell under it
    values = np.array([border, *below, np.float32(91.2)], dtype=np.float64)
    assert _sparse_cells(values, 1e-3).tolist() == [911, 911, 910, 912]


def test_skdt_on_float32_ground_truth_equals_exact(nb201: GroundTruth) -> None:
    """Both variants see the float32 table as they see the exact values (the code variant's pairing unchanged)."""
    rng = np.random.default_rng(1)
    rows = rng.choice(len(nb201), size=200, replace=False)
    stored = _column(nb201, "cifar10/test")[rows]
    exact = np.array([float(x) for x in _nb201_exact(stored, "cifar10/test")])
    ws = np.round(stored + rng.normal(0, 2, rows.size), 1)  # ties in ws too
    for variant in ("code", "clean"):
        assert sparse_kendall_tau(ws, stored, variant=variant) == sparse_kendall_tau(
            ws, exact, variant=variant
        )
