"""The hostile-input suite (issue 13, section 4), table-driven through the real entry point.

Each row is (argv, files, expected exit code, expected message fragment). ``argv`` may name files of ``files``
(written into a fresh directory the command runs in) and use ``{tmp}`` for that directory. Rows run in-process
through :func:`supernet.cli.main`, the console script's entry point, which maps a :class:`SupernetError` to
``error: ...`` and exit 2; a few also run as ``python -m supernet`` subprocesses. Every failure must be one line
per fault, each starting with ``error:``, quoting at most about 100 characters of the input, never a traceback.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from supernet.store import ResultStore

REPO = Path(__file__).resolve().parents[1]
RECIPE = str(REPO / "recipes" / "nb201-cpu.yaml")

PAIRS = ",".join(f"('sep_conv_3x3', {i % 2})" for i in range(8))


def genotype(normal_concat: str) -> str:
    return f"Genotype(normal=[{PAIRS}], normal_concat={normal_concat}, reduce=[{PAIRS}], reduce_concat=range(2, 6))"


DARTS_NODES = "|".join(["sep_conv_3x3~0+sep_conv_3x3~1"] * 4)
NB101_DEEP = '{"matrix":' + "[" * 4000 + "]" * 4000 + "}"
NB101_ROWS = '{"matrix": [' + ",".join(["[0]"] * 100) + '], "ops": []}'
NB101_MILLION_ROWS = '{"matrix": [' + ",".join(["[]"] * 1_000_000) + '], "ops": []}'


def damaged_store(directory: Path) -> None:
    """A results store whose header and schema page are intact and whose later pages are garbage."""
    path = directory / "store" / "supernet.db"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO runs (id, config, status, run_dir, created, updated) "
                       "VALUES (?, '{}', 'done', 'x', 0, 0)", [(f"run{i}-" + "x" * 200,) for i in range(200)])
    db.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)
    path.write_bytes(bytes(data))


# (id, argv, files {name: bytes}, exit code, fragment of the message)
ROWS = [
    # 1. memory exhaustion from one short string: bounded before anything is allocated
    ("darts-range-huge", ["arch", "darts_nds", genotype("range(0,10000000000000)")], {}, 2,
     "concat range(0, 10000000000000) is out of bounds: a cell's states are 0..5"),
    ("darts-range-negative", ["arch", "darts_nds", genotype("range(-3, 4)")], {}, 2, "out of bounds"),
    ("darts-concat-list-too-long", ["arch", "darts_nds", genotype("[2, 3, 4, 5, 5]")], {}, 2,
     "concat names 5 states; a cell has only 4 nodes"),
    ("darts-key-concat-3000", ["arch", "darts_nds", f"normal={DARTS_NODES}@{','.join(['2'] * 3000)};reduce=x@2"], {},
     2, "concat names 3000 states; a cell has only 4 nodes"),
    ("darts-json-pairs-200", ["arch", "darts_nds", '{"normal": [' + ",".join(['["skip_connect", 0]'] * 200)
                               + '], "normal_concat": [2], "reduce": [], "reduce_concat": [2]}'], {}, 2,
     "got 200 pairs"),
    ("darts-text-20k", ["arch", "darts_nds", "normal=" + "x" * 20_000], {}, 2, "an arch is at most 10,000"),
    ("darts-json-deep", ["arch", "darts_nds", '{"normal":' + "[" * 4000], {}, 2, "nested too deeply"),
    ("darts-repr-deep", ["arch", "darts_nds", "Genotype(normal=" + "(" * 4000 + ")"], {}, 2, "not a DARTS genotype"),
    ("nb101-json-deep-100000", ["arch", "nasbench101", '{"matrix":' + "[" * 100_000], {}, 2,
     "a cell is at most 10,000"),
    ("nb101-json-deep", ["arch", "nasbench101", NB101_DEEP], {}, 2, "nested too deeply to be a cell's JSON"),
    ("nb101-matrix-100-rows", ["arch", "nasbench101", NB101_ROWS], {}, 2,
     "matrix has 100 rows; a NAS-Bench-101 spec has at most 64 vertices"),
    ("nb101-matrix-million-rows", ["arch", "nasbench101", NB101_MILLION_ROWS], {}, 2, "a cell is at most 10,000"),
    ("nb101-long-op", ["arch", "nasbench101", '{"matrix": [[0,1,0],[0,0,1],[0,0,0]], "ops": ["input", "'
                       + "c" * 5000 + '", "output"]}'], {}, 2, "unknown op 'ccc"),
    ("nb201-text-1m", ["arch", "nasbench201", "+" * 1_000_000], {}, 2, "a NAS-Bench-201 arch is at most 1,000"),
    ("nb201-long-token", ["arch", "nasbench201", "|" + "a" * 500 + "~0|+|b~0|c~1|+|d~0|e~1|f~2|"], {}, 2,
     "unknown op 'aaa"),
    # 2. one line instead of a traceback
    ("recipe-not-utf8", ["train", "bad.yaml"], {"bad.yaml": b"seed: 1\nname: caf\xe9\n"}, 2,
     "recipe 'bad.yaml' is not UTF-8 text (line 2, byte 17: b'\\xe9')"),
    ("store-damaged-runs", ["runs", "--out-dir", "{tmp}/store"], {"DAMAGED": b""}, 2,
     "store/supernet.db is damaged (database disk image is malformed)"),
    ("store-damaged-show", ["show", "some-run", "--out-dir", "{tmp}/store"], {"DAMAGED": b""}, 2,
     "store/supernet.db is damaged"),
    # 3. silently accepted before: now a clear error
    ("lr-5000-chars", ["train", RECIPE, "protocol.lr=" + "9" * 5000 + "x"], {}, 2, "bad value for 'protocol.lr'"),
    ("lr-inf", ["train", RECIPE, "protocol.lr=inf"], {}, 2, "'protocol.lr': 'inf': Input should be a finite number"),
    ("lr-nan", ["train", RECIPE, "protocol.lr=nan"], {}, 2, "'protocol.lr': 'nan': Input should be a finite number"),
    ("yaml-inf", ["train", "inf.yaml"], {"inf.yaml": b"evaluation:\n  skdt_threshold: .inf\n"}, 2,
     "'evaluation.skdt_threshold': inf: Input should be a finite number"),
    ("recipe-empty", ["train", "empty.yaml"], {"empty.yaml": b""}, 2, "recipe 'empty.yaml' is empty"),
    ("recipe-only-comments", ["train", "c.yaml"], {"c.yaml": b"# nothing yet\n"}, 2, "is empty"),
    ("recipe-duplicate-key", ["train", "dup.yaml"], {"dup.yaml": b"protocol:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n"},
     2, "key 'lr' appears twice in one mapping (lines 2 and 4)"),
    ("recipe-duplicate-section", ["train", "dup.yaml"], {"dup.yaml": b"protocol: {lr: 0.1}\nseed: 1\nprotocol: {}\n"},
     2, "key 'protocol' appears twice in one mapping (lines 1 and 3)"),
    ("layers-100000", ["train", RECIPE, "supernet.layers=100000"], {}, 2,
     "'supernet.layers': 100000: Input should be less than or equal to 64"),
    ("channels-100000", ["train", RECIPE, "supernet.channels=100000"], {}, 2,
     "'supernet.channels': 100000: Input should be less than or equal to 256"),
    # already handled: kept so that they stay handled
    ("unknown-key", ["train", RECIPE, "protocol.lrr=0.1"], {}, 2, "did you mean 'protocol.lr'"),
    ("bad-value", ["train", RECIPE, "protocol.epochs=many"], {}, 2, "bad value for 'protocol.epochs'"),
    ("missing-recipe", ["train", "nope.yaml"], {}, 2, "recipe 'nope.yaml' not found"),
    ("recipe-not-a-mapping", ["train", "list.yaml"], {"list.yaml": b"- 1\n- 2\n"}, 2, "must be a mapping"),
    ("recipe-bad-yaml", ["train", "bad.yaml"], {"bad.yaml": b"protocol: [1\n"}, 2, "is not valid YAML"),
    ("nb201-unknown-op", ["arch", "nasbench201", "|conv~0|+|a~0|b~1|+|a~0|b~1|c~2|"], {}, 2, "unknown op 'conv'"),
    ("store-missing", ["runs", "--out-dir", "{tmp}/none"], {}, 2, "no results store at"),
]

# Rows also run through `python -m supernet`: the installed entry point, in a process of its own.
SUBPROCESS_ROWS = ("darts-range-huge", "store-damaged-runs", "lr-inf", "recipe-not-utf8")


def _prepare(tmp_path: Path, argv: list[str], files: dict[str, bytes]) -> list[str]:
    for name, data in files.items():
        if name == "DAMAGED":
            damaged_store(tmp_path)
        else:
            (tmp_path / name).write_bytes(data)
    return [a.replace("{tmp}", str(tmp_path)) for a in argv]


def _check(err: str, argv: list[str], fragment: str) -> None:
    lines = err.splitlines()
    assert lines, "no message"
    assert all(line.startswith("error: ") for line in lines), err[:2000]
    assert len(lines) == 1, err[:2000]
    assert fragment in lines[0], lines[0][:2000]
    assert "Traceback" not in err
    for arg in argv:  # at most ~100 characters of any input are quoted
        if len(arg) > 120:
            assert arg[:110] not in err, lines[0][:300]
    assert len(lines[0]) < 400, lines[0][:400]


@pytest.mark.parametrize(("argv", "files", "code", "fragment"), [pytest.param(*r[1:], id=r[0]) for r in ROWS])
def test_hostile_input_in_process(entry, tmp_path, argv, files, code, fragment):
    argv = _prepare(tmp_path, argv, files)
    got, err = entry(argv)
    assert got == code, err[:2000]
    _check(err, argv, fragment)


@pytest.mark.parametrize(("argv", "files", "code", "fragment"),
                         [pytest.param(*r[1:], id=r[0]) for r in ROWS if r[0] in SUBPROCESS_ROWS])
def test_hostile_input_through_the_console_entry_point(tmp_path, argv, files, code, fragment):
    argv = _prepare(tmp_path, argv, files)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "supernet", *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert proc.stdout == ""
    _check(proc.stderr, argv, fragment)


def test_several_bad_values_give_one_error_line_each(entry):
    code, err = entry(["train", RECIPE, "protocol.lr=inf", "supernet.layers=100000"])
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("error: bad value for '") for line in lines), err
