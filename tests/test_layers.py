"""The package's import structure (docs/design.md, "Layers"): no cycles, and no module imports from a
higher layer. Imports under ``if TYPE_CHECKING:`` are annotations only and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "supernet"
# Module-name prefixes per layer, lowest first; the longest matching prefix decides.
LAYERS = (
    ("supernet.errors", "supernet.streams", "supernet.spaces", "supernet.evaluate.measures",
     "supernet.evaluate.metrics", "supernet.evaluate.catalogue", "supernet.groundtruth"),
    ("supernet.registry", "supernet.config", "supernet.factors"),
    ("supernet.nn", "supernet.supernets", "supernet.data", "supernet.runtime", "supernet.distributed", "supernet.train",
     "supernet.evaluate",
     "supernet.proxies"),
    ("supernet.plugins", "supernet.pools", "supernet.store", "supernet.runlock", "supernet.events"),
    ("supernet.run", "supernet.trained", "supernet.search", "supernet.retrain", "supernet.zerocost", "supernet.experiments",
     "supernet.report",
     "supernet.downloads"),
    ("supernet.cli", "supernet.__main__", "supernet"),
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = ("supernet", *path.relative_to(SRC).with_suffix("").parts)
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    annotations_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                        and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("supernet"):
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
            if node.module in MODULES and node.module != "supernet":
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES and a.name != "supernet"}
    return found


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def layer(module: str) -> int:
    best, level = -1, -1
    for k, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), k
    assert level >= 0, f"{module} is in no layer: add it to LAYERS and docs/design.md"
    return level


def test_every_module_has_a_layer():
    for m in MODULES:
        layer(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_higher_layer(module: str):
    mine = layer(module)
    higher = sorted(t for t in GRAPH[module] if layer(t) > mine)
    assert not higher, f"{module} (layer {mine}) imports {higher}"


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(t):], t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_ground_truth_and_spaces_build_no_network():
    for m, targets in GRAPH.items():
        if m.startswith(("supernet.groundtruth", "supernet.spaces")):
            assert not {t for t in targets if t.startswith(("supernet.supernets", "supernet.nn"))}, m
