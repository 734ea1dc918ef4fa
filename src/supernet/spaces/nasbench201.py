"""NAS-Bench-201: a 4-node cell with 6 edges, each carrying one of 5 ops (5^6 = 15,625 archs)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from supernet.errors import SupernetError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_ARCHS = len(OPS) ** len(EDGES)
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_TOKEN = re.compile(r"([^~|+]*)~([0-9]+)")
MAX_TEXT = 1_000  # the longest arch (six nor_conv_3x3 edges) has 93 characters; refuse more before splitting


def _quote(value: object) -> str:
    """``value`` as a message quotes it: its repr, cut to 100 characters."""
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


@dataclass(frozen=True)
class NB201Arch:
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise SupernetError(f"a NAS-Bench-201 arch has {len(EDGES)} edges, got {len(self.ops)} ops")
        bad = [op for op in self.ops if op not in _OP_INDEX]
        if bad:
            raise SupernetError(f"unknown op {_quote(bad[0])}; valid ops: {', '.join(OPS)}")

    def __str__(self) -> str:
        pairs = list(zip(self.ops, EDGES, strict=True))
        return "+".join(
            "|" + "|".join(f"{op}~{i}" for op, (i, j) in pairs if j == n) + "|" for n in (1, 2, 3)
        )

    @property
    def op_indices(self) -> tuple[int, ...]:
        return tuple(_OP_INDEX[op] for op in self.ops)


def parse_arch(text: str) -> NB201Arch:
    """Strict, so that a typo in a config or CLI argument fails loudly instead of silently mismatching."""
    s = text.strip()
    if len(s) > MAX_TEXT:
        raise SupernetError(f"arch {_quote(s)} has {len(s):,} characters; a NAS-Bench-201 arch is at most {MAX_TEXT:,}")
    nodes = s.split("+")
    if len(nodes) != 3:
        raise SupernetError(f"arch {_quote(s)} has {len(nodes)} nodes separated by '+', expected 3 (nodes 1, 2, 3)")
    ops: list[str] = []
    for n, node in enumerate(nodes, start=1):
        if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
            raise SupernetError(
                f"node {n} {_quote(node)} of arch {_quote(s)} must be wrapped in '|', e.g. '|nor_conv_3x3~0|'"
            )
        tokens = node[1:-1].split("|")
        if len(tokens) != n:
            raise SupernetError(
                f"node {n} of arch {_quote(s)} has {len(tokens)} edges, expected {n} (inputs 0..{n - 1})"
            )
        for k, token in enumerate(tokens):
            m = _TOKEN.fullmatch(token)
            if m is None:
                raise SupernetError(
                    f"malformed edge token {_quote(token)} in node {n} of arch {_quote(s)}; expected 'op~k'"
                )
            op, src = m.group(1), m.group(2)
            if src != str(k):
                raise SupernetError(
                    f"edge token {_quote(token)} in node {n} of arch {_quote(s)} must read from input ~{k}, not ~{src}"
                )
            if op not in _OP_INDEX:
                raise SupernetError(f"unknown op {_quote(op)} on edge {k}->{n}; valid ops: {', '.join(OPS)}")
            ops.append(op)
    return NB201Arch(tuple(ops))


def node_is_zero(arch: NB201Arch) -> tuple[bool, bool, bool, bool]:
    """A node is identically zero when every incoming edge is `none` or leaves a zero node."""
    zero = [False, False, False, False]
    for n in (1, 2, 3):
        zero[n] = all(op == "none" or zero[i] for op, (i, j) in zip(arch.ops, EDGES, strict=True) if j == n)
    return zero[0], zero[1], zero[2], zero[3]


def unique_key(arch: NB201Arch) -> str:
    """NAS-Bench-201's own isomorphism key (`Structure.to_unique_str(consider_zero=True)`).

    The tokens ('0' input, '#' zero, '(x)@op') and the splicing of a skipped multi-term node's
    string into its consumer's sorted '+'-join are kept exactly, because the published count of
    6,466 unique archs depends on them: a fully flattened multiset would give fewer classes. Only a
    node whose whole form is '#' (node 1 fed by `none`) counts as zero for its out-edges.
    """
    forms = ["0"]
    for n in (1, 2, 3):
        terms = []
        for op, (i, j) in zip(arch.ops, EDGES, strict=True):
            if j != n:
                continue
            if op == "none" or forms[i] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(forms[i])
            else:
                terms.append(f"({forms[i]})@{op}")
        forms.append("+".join(sorted(terms)))
    return forms[3]


class NB201Space:
    name = "nasbench201"
    ops = OPS
    edges = EDGES

    def parse(self, text: str) -> NB201Arch:
        return parse_arch(text)

    def key(self, arch: NB201Arch) -> str:
        return str(arch)

    def unique_key(self, arch: NB201Arch) -> str:
        return unique_key(arch)

    def node_is_zero(self, arch: NB201Arch) -> tuple[bool, bool, bool, bool]:
        return node_is_zero(arch)

    def is_disconnected(self, arch: NB201Arch) -> bool:
        return node_is_zero(arch)[3]

    def index_of(self, arch: NB201Arch) -> int:
        i = 0
        for d in arch.op_indices:
            i = i * len(OPS) + d
        return i

    def from_index(self, index: int) -> NB201Arch:
        if not 0 <= index < NUM_ARCHS:
            raise SupernetError(f"NAS-Bench-201 enumeration index must be in [0, {NUM_ARCHS}), got {index}")
        digits = []
        for _ in EDGES:
            index, d = divmod(index, len(OPS))
            digits.append(OPS[d])
        return NB201Arch(tuple(reversed(digits)))

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        return self.from_index(int(rng.integers(NUM_ARCHS)))

    def sample_encoding(self, rng: np.random.Generator) -> NB201Arch:
        return NB201Arch(tuple(OPS[int(d)] for d in rng.integers(len(OPS), size=len(EDGES))))

    def sample_unique(self, rng: np.random.Generator) -> NB201Arch:
        """Uniform over the 6,466 isomorphism classes (``unique_key``), then uniform among the class's
        encodings: each computed function is trained equally often, and within a class every encoding's
        ops still get trained (the pool may hold any of them)."""
        classes = self.isomorphism_classes()
        members = classes[int(rng.integers(len(classes)))]
        return self.from_index(members[int(rng.integers(len(members)))])

    def isomorphism_classes(self) -> list[list[int]]:
        """Enumeration indices grouped by ``unique_key``, classes in order of their first member (computed once)."""
        cached = getattr(self, "_classes", None)
        if cached is None:
            groups: dict[str, list[int]] = {}
            for i in range(NUM_ARCHS):
                groups.setdefault(unique_key(self.from_index(i)), []).append(i)
            cached = self._classes = list(groups.values())
        return cached

    def op_slots(self, arch: NB201Arch) -> int:
        """Positions that carry a choice of op: the six edges."""
        return len(EDGES)

    def with_ops(self, arch: NB201Arch, ops: Sequence[str]) -> NB201Arch:
        return NB201Arch(tuple(ops))

    def slot_op(self, arch: NB201Arch, slot: int) -> str:
        """The op on edge ``slot`` (a few-shot super-net splits on it)."""
        return arch.ops[slot]

    def with_slot_op(self, arch: NB201Arch, slot: int, op: str) -> NB201Arch:
        return NB201Arch(arch.ops[:slot] + (op,) + arch.ops[slot + 1:])

    def __iter__(self) -> Iterator[NB201Arch]:
        return (self.from_index(i) for i in range(NUM_ARCHS))

    def __len__(self) -> int:
        return NUM_ARCHS
