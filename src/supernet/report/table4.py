"""Table 4: per space, the Random-NAS baseline and the tuned recipe, next to the paper's figures.

The runs are the space's reference runs (``supernet reference SPACE random-nas|tuned RUN...``: the
untuned recipe's seeds and the seeds of the recipe ``supernet tune`` wrote); each row is the mean ± sample
std over its completed runs of the final searched model, s-KdT and P>R. The paper reports only the final
searched model (its "Random NAS" row quotes earlier work for NB101, NB201 and DARTS-NDS; "Random NAS (Ours)"
is its tuned recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.evaluate import catalogue
from supernet.registry import get_space, space_names
from supernet.store import ResultStore

ROLES = {"random-nas": "Random-NAS baseline", "tuned": "tuned recipe"}
COLUMNS = ("final_acc", "skdt", "p_surpass_random")


@dataclass(frozen=True)
class Table4Row:
    space: str
    role: str
    runs: int  # completed reference runs
    named: int  # reference runs named, completed or not
    values: dict[str, tuple[float, float]]  # metric -> (mean, sample std)
    paper: tuple[float, float] | None  # the paper's final searched model (mean, std)


def table4_rows(store: ResultStore) -> list[Table4Row]:
    runs = {r.id: r for r in store.runs()}
    rows = []
    for space in space_names():
        for role in ROLES:
            named = store.references(space, role)
            if not named:
                continue
            done = [store.latest_metrics(r) for r in named if r in runs and runs[r].status == "completed"]
            values = {}
            for metric in COLUMNS:
                v = [m[metric] for m in done if m.get(metric) is not None and np.isfinite(m[metric])]
                if v:
                    values[metric] = (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
            paper = get_space(space).paper.get("table4", {}).get(role)
            rows.append(Table4Row(space, role, len(done), len(named), values, paper))
    return rows


def markdown_table4(rows: list[Table4Row]) -> str:
    titles = [catalogue.metric(m).title for m in COLUMNS]
    lines = ["| space | row | runs | " + " | ".join(titles) + " | paper's final model |",
             "|" + "---|" * (4 + len(COLUMNS))]
    for r in rows:
        cells = []
        for m in COLUMNS:
            fmt = catalogue.metric(m).format
            cells.append(f"{fmt(r.values[m][0])} ± {fmt(r.values[m][1])}" if m in r.values else "-")
        paper = f"{r.paper[0]:.2f} ± {r.paper[1]:.2f}" if r.paper else "-"
        lines.append(f"| {get_space(r.space).title} | {ROLES[r.role]} | {r.runs}/{r.named} | " + " | ".join(cells)
                     + f" | {paper} |")
    return "\n".join(lines)
