"""NASBench-101 facts shared by the tests: the data location and the README's two reference cells."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NB101_DATA = REPO_ROOT.parent / "shared" / "data" / "nasbench101" / "naslib"
C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

README_HASH = "00005c142e6f48ac74fdcf73e3439874"  # 8,555,530 parameters
README_MATRIX = [
    [0, 1, 0, 0, 1, 1, 0],
    [0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 1],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
README_OPS = ["input", C3, MP, C3, C3, C1, "output"]
INCEPTION_MATRIX = [  # 2,694,282 parameters
    [0, 1, 1, 1, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
INCEPTION_OPS = ["input", C1, C3, C3, C3, MP, "output"]

SHIPPED_RECORDS30 = "nb101-records30.npz"  # the 30 official records of NASLib's nb101_dummy.json, shipped


def shipped_records30() -> list[dict]:
    """The shipped 30-record table as records in the official file's (and NASLib's JSON's) terms: hash,
    pruned matrix, ops and published parameter count. Read straight from the .npz arrays, so checks
    against published numbers run without ../shared."""
    from importlib import resources

    import numpy as np

    path = resources.files("supernet.groundtruth") / "tables" / SHIPPED_RECORDS30
    with resources.as_file(path) as p, np.load(p, allow_pickle=False) as z:
        keys, matrix, nv, ops = z["keys"], z["matrix"], z["num_vertices"], z["ops"]
        names, params = z["op_names"].tolist(), z["trainable_parameters"]
        records = []
        for i, key in enumerate(keys.tolist()):
            n = int(nv[i])
            records.append({
                "hash": key,
                "module_adjacency": matrix[i, :n, :n].astype(int).tolist(),
                "module_operations": ["input", *(names[int(c)] for c in ops[i, : n - 2]), "output"],
                "trainable_parameters": int(params[i]),
            })
    return records
