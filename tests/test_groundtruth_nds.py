"""NDS DARTS.json -> table: format, seed averaging, the parameter-count validator, clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nds_records import record, write_nds
from supernet.errors import SupernetError
from supernet.groundtruth.nds_convert import convert_nds_darts, load_nds_details
from supernet.spaces.darts import DartsSpace
from supernet.supernets.darts import darts_param_count


def test_conversion_keeps_accuracy_width_depth_and_params(tmp_path):
    src = tmp_path / "DARTS.json"
    archs = write_nds(src, 12)
    gt = convert_nds_darts(src, tmp_path / "nds.npz", param_count=darts_param_count)
    assert len(gt) == 12 and gt.columns == ("cifar10/test",)
    first = str(archs[0])
    assert gt.accuracy(first) == pytest.approx(95.0)  # 100 - the last epoch's test error
    assert gt.rank(first) == 11  # lowest error of the twelve
    d = load_nds_details(tmp_path / "nds.npz")
    assert d.keys.tolist() == gt.keys()
    row = gt.keys().index(first)
    assert d.params[row] == darts_param_count(archs[0], int(d.width[row]), int(d.depth[row]), 10, bool(d.aux[row]))
    assert d.aux.tolist() == [bool(i % 2) for i in range(12)] and set(d.runs.tolist()) == {1}


def test_repeated_genotypes_are_averaged_and_split_files_are_read(tmp_path):
    a, b = (DartsSpace().sample(np.random.default_rng(i)) for i in (1, 2))
    records = [record(a, 8, 3, 10.0), record(b, 8, 3, 7.0), record(a, 8, 3, 6.0)]
    src = tmp_path / "split.json"
    src.write_text(json.dumps({"top": records[:1], "mid": records[1:]}))
    gt = convert_nds_darts(src, param_count=darts_param_count)
    assert gt.keys() == [str(a), str(b)]
    assert gt.accuracy(str(a)) == pytest.approx(92.0) and gt.accuracy(str(b)) == pytest.approx(93.0)
    assert gt.official_index(str(b)) == 1


def test_a_benchmark_that_does_not_match_our_networks_is_refused(tmp_path):
    a = DartsSpace().sample(np.random.default_rng(0))
    right = darts_param_count(a, 8, 3)
    src = tmp_path / "DARTS.json"
    src.write_text(json.dumps([record(a, 8, 3, 9.0, params=right + 1)]))
    out = tmp_path / "nds.npz"
    with pytest.raises(SupernetError, match=f"has {right} parameters, the file says {right + 1}"):
        convert_nds_darts(src, out, param_count=darts_param_count)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    assert len(convert_nds_darts(src, verify_params=0, param_count=darts_param_count)) == 1  # explicit opt-out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not valid JSON"),
        ("[]", "non-empty JSON list"),
        ('[{"net": {}}]', "record 0 lacks the NDS fields"),
        ('[{"net": {"genotype": {"normal": []}, "width": 8, "depth": 3}, "params": 1, "test_ep_top1": [1]}]',
         "record 0: a DARTS genotype needs the keys"),
    ],
)
def test_malformed_files_fail_with_the_reason(tmp_path, content, message):
    src = tmp_path / "bad.json"
    src.write_text(content)
    with pytest.raises(SupernetError, match=message):
        convert_nds_darts(src, tmp_path / "out.npz", param_count=darts_param_count)


def test_one_genotype_at_another_size_is_left_out_with_a_warning(tmp_path):
    a = DartsSpace().sample(np.random.default_rng(0))
    src = tmp_path / "DARTS.json"
    src.write_text(json.dumps([record(a, 8, 3, 9.0), record(a, 16, 3, 1.0), record(a, 8, 3, 7.0)]))
    with pytest.warns(UserWarning, match="1 records train a genotype at another width"):
        gt = convert_nds_darts(src, param_count=darts_param_count)
    assert gt.accuracy(str(a)) == pytest.approx(92.0)  # the two runs of the first record's network


def test_unrankable_or_mixed_budget_records_are_refused(tmp_path):
    a, b = (DartsSpace().sample(np.random.default_rng(i)) for i in (1, 2))
    src = tmp_path / "DARTS.json"
    src.write_text(json.dumps([record(a, 8, 3, 9.0), record(b, 8, 3, float("nan"))]))  # json writes NaN
    with pytest.raises(SupernetError, match="record 1: its final test error is nan"):
        convert_nds_darts(src, param_count=darts_param_count)
    src.write_text(json.dumps([record(a, 8, 3, 9.0), record(b, 8, 3, 8.0, epochs=5)]))
    with pytest.raises(SupernetError, match="record 1 was trained 5 epochs, record 0 3"):
        convert_nds_darts(src, param_count=darts_param_count)


def test_cli_converts_and_a_non_nds_table_is_named(tmp_path):
    src = tmp_path / "DARTS.json"
    write_nds(src, 4)
    out = tmp_path / "nds.npz"
    res = subprocess.run([sys.executable, "-m", "supernet", "convert", "darts_nds", str(src), str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "4 architectures" in res.stderr and out.is_file()
    from supernet.groundtruth.shipped import gt_path

    with pytest.raises(SupernetError, match="is not a DARTS-NDS table"):
        load_nds_details(gt_path(None, "nb201"))


def test_arch_cli_looks_architectures_up_in_a_converted_table(tmp_path):
    src = tmp_path / "DARTS.json"
    archs = write_nds(src, 5)
    out = tmp_path / "nds.npz"
    convert_nds_darts(src, out, param_count=darts_param_count)
    res = subprocess.run([sys.executable, "-m", "supernet", "arch", "darts_nds", "--json", "--ground-truth", str(out),
                          json.dumps(archs[0].genotype())], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)
    assert row["key"] == str(archs[0]) and row["cifar10/test"] == pytest.approx(95.0) and row["rank"] == 4
    assert row["nds_params"] == darts_param_count(archs[0], row["nds_width"], row["nds_depth"], 10, False)
