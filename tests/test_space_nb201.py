from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from supernet.errors import SupernetError
from supernet.spaces.base import SearchSpace
from supernet.spaces.nasbench201 import EDGES, OPS, NB201Arch, NB201Space

SPACE = NB201Space()
RESNET = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_protocol_and_size() -> None:
    assert isinstance(SPACE, SearchSpace)
    assert SPACE.name == "nasbench201"
    assert len(SPACE) == 15_625
    assert OPS[3] == "nor_conv_3x3" and EDGES[2] == (1, 2)


def test_arch_string_and_indices() -> None:
    arch = SPACE.parse(RESNET)
    assert arch.ops == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "nor_conv_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "nor_conv_3x3",
    )
    assert arch.op_indices == (3, 3, 3, 1, 3, 3)
    assert str(arch) == SPACE.key(arch) == RESNET
    assert SPACE.parse(f"  {RESNET}\n") == arch


def test_enumeration_order_and_round_trip() -> None:
    archs = list(SPACE)
    assert archs[0].ops == ("none",) * 6
    assert archs[1].ops == ("none",) * 5 + ("skip_connect",)
    assert archs[5].ops == ("none",) * 4 + ("skip_connect", "none")
    assert archs[-1].ops == ("avg_pool_3x3",) * 6
    for i, arch in enumerate(archs):
        assert SPACE.parse(str(arch)) == arch
        assert SPACE.index_of(arch) == i
        assert SPACE.from_index(i) == arch
    assert len({str(a) for a in archs}) == 15_625


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            RESNET.replace("nor_conv_3x3~0|+", "conv_3x3~0|+", 1),
            ["unknown op 'conv_3x3' on edge 0->1", "valid ops: none, skip_connect"],
        ),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", ["2 nodes", "expected 3"]),
        (
            RESNET.replace("nor_conv_3x3~1|+", "nor_conv_3x3~0|+"),
            ["node 2", "must read from input ~1, not ~0"],
        ),
        (RESNET.replace("|skip_connect~0|", "|"), ["node 3", "2 edges, expected 3"]),
        (RESNET.replace("|+|", "+", 1), ["node 1", "wrapped in '|'"]),
        (
            RESNET.replace("nor_conv_3x3~0|+", "nor_conv_3x3-0|+", 1),
            ["malformed edge token 'nor_conv_3x3-0'", "op~k"],
        ),
        (RESNET.replace("skip_connect~0", "skip_connect ~0"), ["unknown op 'skip_connect '"]),
        ("", ["1 nodes", "expected 3"]),
    ],
)
def test_parse_errors_name_the_problem(text: str, fragments: list[str]) -> None:
    with pytest.raises(SupernetError) as info:
        SPACE.parse(text)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_arch_validates_ops() -> None:
    with pytest.raises(SupernetError, match="valid ops"):
        NB201Arch(("conv",) * 6)
    with pytest.raises(SupernetError, match="6 edges"):
        NB201Arch(("none",) * 5)
    with pytest.raises(SupernetError, match="enumeration index"):
        SPACE.from_index(15_625)


def test_unique_count_matches_nasbench201() -> None:
    assert len({SPACE.unique_key(a) for a in SPACE}) == 6_466


def test_unique_key_isomorphisms() -> None:
    def uk(text: str) -> str:
        return SPACE.unique_key(SPACE.parse(text))

    # Node 1 is a skip of the input, so the two convs into the output see the same tensor: swapping them is isomorphic.
    a = "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|"
    b = "|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|"
    assert uk(a) == uk(b)
    # A node fed only by `none` is zero, so whatever op leaves it is irrelevant.
    c = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    d = "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|"
    assert uk(c) == uk(d)
    # Different op on a live edge, or different wiring, is a different function.
    assert uk(a) != uk(a.replace("nor_conv_1x1~1", "avg_pool_3x3~1"))
    assert uk(RESNET) != uk(RESNET.replace("skip_connect~0", "nor_conv_1x1~0"))
    # conv then skip along a path equals skip then conv; stacking the two convs does not.
    assert uk(a) == uk("|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|")
    assert uk(a) != uk("|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|")


def test_node_is_zero_and_disconnected() -> None:
    assert SPACE.node_is_zero(SPACE.parse(RESNET)) == (False, False, False, False)
    cut = SPACE.parse("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    assert SPACE.node_is_zero(cut) == (False, True, True, True)
    assert SPACE.is_disconnected(cut) and not SPACE.is_disconnected(SPACE.parse(RESNET))


@pytest.mark.parametrize("method", ["sample", "sample_encoding"])
def test_sampling_is_deterministic_and_uniform(method: str) -> None:
    draw = getattr(SPACE, method)
    first = [draw(np.random.default_rng(7)) for _ in range(1)]
    rng_a, rng_b = np.random.default_rng(123), np.random.default_rng(123)
    seq_a = [draw(rng_a) for _ in range(50)]
    assert seq_a == [draw(rng_b) for _ in range(50)]
    assert first == [draw(np.random.default_rng(7))]
    rng = np.random.default_rng(0)
    n = 25_000
    archs = [draw(rng) for _ in range(n)]
    for edge in range(len(EDGES)):
        counts = Counter(a.ops[edge] for a in archs)
        assert set(counts) == set(OPS)
        assert all(abs(c - n / 5) < 5 * np.sqrt(n * 0.2 * 0.8) for c in counts.values())
    assert len({str(a) for a in archs}) > 12_000  # ~12,500 expected of 15,625 distinct


def test_long_input_is_refused_and_quoted_short():
    with pytest.raises(SupernetError, match="at most 1,000") as err:
        NB201Space().parse("+" * 1_000_000)
    assert len(str(err.value)) < 200
    with pytest.raises(SupernetError, match="unknown op 'aaa") as err:
        NB201Space().parse("|" + "a" * 500 + "~0|+|b~0|c~1|+|d~0|e~1|f~2|")
    assert len(str(err.value)) < 300
