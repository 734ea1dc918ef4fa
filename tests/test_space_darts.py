"""DARTS-NDS space: parsing in three notations, strict errors, keys, sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from supernet.errors import SupernetError
from supernet.spaces.darts import OPS, DartsSpace, loose_ends, parse_arch, unique_key

# DARTS' published DARTS_V2 genotype, as its genotypes.py writes it.
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)
V2_KEY = (
    "normal=sep_conv_3x3~0+sep_conv_3x3~1|sep_conv_3x3~0+sep_conv_3x3~1|sep_conv_3x3~1+skip_connect~0|"
    "skip_connect~0+dil_conv_3x3~2@2,3,4,5;reduce=max_pool_3x3~0+max_pool_3x3~1|skip_connect~2+max_pool_3x3~1|"
    "max_pool_3x3~0+skip_connect~2|skip_connect~2+max_pool_3x3~1@2,3,4,5"
)


def test_three_notations_give_one_key():
    a = parse_arch(DARTS_V2)
    assert str(a) == V2_KEY
    assert parse_arch(V2_KEY) == a
    assert parse_arch(json.dumps(a.genotype())) == a  # the NDS record's net.genotype
    assert a.normal.concat == (2, 3, 4, 5) and a.reduce.inputs[:4] == (0, 1, 2, 1)


def test_unique_key_ignores_pair_order_but_key_keeps_it():
    a = parse_arch(V2_KEY)
    swapped = parse_arch(V2_KEY.replace("sep_conv_3x3~1+skip_connect~0", "skip_connect~0+sep_conv_3x3~1"))
    assert str(a) != str(swapped)  # with ops on nodes the two pairs own different weights
    assert unique_key(a) == unique_key(swapped)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sep_conv_3x3~0", "must read 'normal=<cell>;reduce=<cell>'"),
        (V2_KEY.replace("@2,3,4,5;", ";"), "lacks '@'"),
        (V2_KEY.replace("dil_conv_3x3~2", "conv_7x7~2"), "unknown op 'conv_7x7'"),
        (V2_KEY.replace("dil_conv_3x3~2", "dil_conv_3x3~5"), "node 3 \\(state 5\\) reads state 5"),
        (V2_KEY.replace("@2,3,4,5;", "@5,2;"), "increasing"),
        (V2_KEY.replace("@2,3,4,5;", "@1,2;"), "only name node states 2..5"),
        (V2_KEY.replace("|skip_connect~0+dil_conv_3x3~2", ""), "3 nodes"),
        (V2_KEY.replace("dil_conv_3x3~2", "dil_conv_3x3~\u00b2"), "malformed pair"),  # a digit, not ASCII
        ('{"normal": []}', "needs the keys"),
        ("Genotype(normal=__import__('os').system('true'))", "not a DARTS genotype"),  # parsed, never run
    ],
)
def test_malformed_archs_are_refused_with_the_reason(text, message):
    with pytest.raises(SupernetError, match=message):
        parse_arch(text)


def test_sampling_without_a_table_follows_nds():
    space = DartsSpace()
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.sample(rng)
        for cell in (a.normal, a.reduce):
            pairs = cell.inputs
            assert all(pairs[2 * k] != pairs[2 * k + 1] for k in range(4))  # two distinct inputs per node
            assert cell.concat == loose_ends(cell.inputs)
        assert parse_arch(str(a)) == a
    assert space.num_archs == (2 * 6 * 12 * 20 * len(OPS) ** 8) ** 2  # ordered input pairs: the key keeps the order


def test_a_table_space_samples_only_its_keys_and_refuses_encodings():
    keys = [str(DartsSpace().sample(np.random.default_rng(i))) for i in range(5)]
    space = DartsSpace(keys)
    assert len(space) == 5 and [str(a) for a in space] == keys
    rng = np.random.default_rng(1)
    assert {str(space.sample(rng)) for _ in range(100)} == set(keys)
    with pytest.raises(SupernetError, match="no encoding-uniform sampler"):
        space.sample_encoding(rng)
    with pytest.raises(SupernetError, match="cannot be enumerated"):
        iter(DartsSpace())


def test_fairnas_slots_are_the_sixteen_ops():
    space = DartsSpace()
    a = parse_arch(V2_KEY)
    assert space.op_slots(a) == 16
    child = space.with_ops(a, ["avg_pool_3x3"] * 16)
    assert set(child.ops) == {"avg_pool_3x3"} and child.normal.inputs == a.normal.inputs
    assert child.reduce.concat == a.reduce.concat


def test_concat_sizes_are_bounded_before_they_are_built():
    """range(0, 10**13) once grew to 24 GB: a concat is checked against the cell's 4 nodes first."""
    pairs = ",".join(f"('sep_conv_3x3', {i % 2})" for i in range(8))
    ok = f"Genotype(normal=[{pairs}], normal_concat=range(2, 6), reduce=[{pairs}], reduce_concat=range(2, 6))"
    assert parse_arch(ok).normal.concat == (2, 3, 4, 5)
    for concat, message in [
        ("range(0,10000000000000)", "out of bounds: a cell's states are 0..5"),
        ("range(2, 6, 10**12)", "not a DARTS genotype"),  # only literals: an expression is refused
        ("[2, 3, 4, 5, 5]", "concat names 5 states; a cell has only 4 nodes"),
    ]:
        with pytest.raises(SupernetError, match=message):
            parse_arch(ok.replace("normal_concat=range(2, 6)", f"normal_concat={concat}"))
    key = V2_KEY.replace("@2,3,4,5;", "@" + ",".join(["2"] * 100_000) + ";")
    with pytest.raises(SupernetError, match="at most 10,000"):
        parse_arch(key)
    with pytest.raises(SupernetError, match="concat names 2000 states"):
        parse_arch(V2_KEY.replace("@2,3,4,5;", "@" + ",".join(["2"] * 2000) + ";"))
    with pytest.raises(SupernetError, match="nested too deeply"):
        parse_arch('{"normal": ' + "[" * 5000)
