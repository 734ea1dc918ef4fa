"""The factor registry: the paper's 14 factors, each level a valid config of every space it names."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest

from supernet.config import VALID_KEYS, load_config
from supernet.errors import SupernetError
from supernet.factors import FACTORS, get_factor

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RECIPE_OF = {"nasbench201": RECIPES / "nb201.yaml", "nasbench101": RECIPES / "nb101.yaml",
             "darts_nds": RECIPES / "darts-nds.yaml"}


def test_fourteen_factors_in_the_papers_groups_and_the_post_paper_methods():
    paper = [f for f in FACTORS if f.group != "beyond the paper"]
    assert len(paper) == 14 and len({f.name for f in FACTORS}) == len(FACTORS)
    groups = collections.Counter(f.group for f in paper)
    assert groups == {"f_ws implementation": 5, "f_ws low fidelity": 4, "P_ws hyper-parameters": 4, "P_ws sampling": 1}
    later = [f.name for f in FACTORS if f.group == "beyond the paper"]
    assert later == ["unique_sampling", "score", "ensemble", "few_shot", "landmarks"]  # issue 14's methods, and bn's 4th level
    hyper = [f.name for f in FACTORS if f.group == "P_ws hyper-parameters"]
    assert hyper == ["bn", "lr", "epochs", "weight_decay"]  # the order the paper tunes them in


@pytest.mark.parametrize("factor", FACTORS, ids=[f.name for f in FACTORS])
def test_every_level_is_a_valid_distinct_config(factor):
    assert set(factor.keys) <= set(VALID_KEYS)
    for space in factor.spaces:
        ids = set()
        for level in factor.levels_for(space):
            cfg = load_config(RECIPE_OF[space], list(level.overrides))
            assert cfg.space.name == space
            ids.add(cfg.run_id())
            for text in level.overrides:
                assert text.split("=", 1)[0] in VALID_KEYS
        assert len(ids) == len(factor.levels_for(space)), f"{factor.name}: two levels give the same run"


def test_factors_refuse_spaces_and_names_they_do_not_know():
    with pytest.raises(SupernetError, match="does not apply to nasbench201"):
        get_factor("wsbn").levels_for("nasbench201")
    with pytest.raises(SupernetError, match="unknown factor 'lrr'"):
        get_factor("lrr")


def test_cli_lists_the_factors_of_a_space():
    res = subprocess.run([sys.executable, "-m", "supernet", "factors", "--space", "nasbench101"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "supernet.channel_strategy=shuffle" in res.stdout and "op_placement" not in res.stdout
    assert "protocol.sampler=fairnas" in res.stdout
