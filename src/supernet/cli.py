"""Command line: ``supernet train | runs | show | evaluate | arch | proxies | convert | keys | factors | sweep | tune |
report | search | landscape``.

Every user mistake surfaces as one ``error: ...`` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import click

from supernet.errors import SupernetError

KIND_LABEL = {"manual": "re-evaluation", "search": "Random-NAS search sample"}


class SpaceName(click.ParamType):
    """A registered space, checked when the command runs: plug-ins may register after this module loads."""

    name = "space"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from supernet.registry import space_names

        if value not in space_names():
            self.fail(f"unknown space '{value}'; available: {', '.join(space_names())}", param, ctx)
        return value


SPACE = SpaceName()
OUT_DIR = click.option("--out-dir", default="runs", show_default=True, help="directory holding supernet.db and runs")


@click.group()
@click.version_option(package_name="supernet")
def cli() -> None:
    """Train weight-sharing super-nets and measure how well they rank architectures."""


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
def train(recipe: str, overrides: tuple[str, ...]) -> None:
    """Train the super-net of RECIPE (YAML), with key=value OVERRIDES (e.g. seed=1 data.root=PATH).

    Re-running the same command resumes the run from its last checkpoint.
    """
    from supernet.config import load_config
    from supernet.run import Run

    cfg = load_config(recipe, list(overrides))
    run = Run(cfg)
    def announce(done: int) -> None:
        click.echo(f"run {run.id} -> {run.dir}" + (f" (resuming from epoch {done})" if done else ""), err=True)

    metrics = run.train(on_start=announce)
    _print_metrics(run.id, metrics)


def _open_store(out_dir: str):  # noqa: ANN202 - keeps the import lazy
    """An existing store only: a mistyped --out-dir must not create an empty one."""
    from supernet.store import ResultStore

    db = Path(out_dir) / "supernet.db"
    if not db.exists():
        raise SupernetError(f"no results store at {db}; train a run first or pass --out-dir")
    return ResultStore(db)


@cli.command()
@OUT_DIR
@click.option("--json", "as_json", is_flag=True, help="one JSON object per run (id, status, epochs, config, metrics)")
def runs(out_dir: str, as_json: bool) -> None:
    """List runs with their status and headline metrics (``stale``: marked running, but no process holds it)."""
    from supernet.config import supervised
    from supernet.evaluate import catalogue
    from supernet.runlock import shown_status

    store = _open_store(out_dir)
    rows = [(row, store.latest_metrics(row.id)) for row in store.runs()]
    if as_json:  # for pandas: pd.read_json(..., lines=True)
        for row, m in rows:
            click.echo(json.dumps(_finite({"id": row.id, "name": row.name, "space": row.space, "seed": row.seed,
                                           "status": shown_status(out_dir, row.id, row.status),
                                           "epochs_done": row.epochs_done, "supervised": supervised(row.config) is not None,
                                           "run_dir": row.run_dir, "config": row.config, "metrics": m}), allow_nan=False))
        return
    head = catalogue.metric(catalogue.HEADLINE)
    cols = [(m.name, m.short, m) for m in catalogue.METRICS if m.runs]  # (stored key, title, catalogue row)
    if any("params/" + head.name in m for _, m in rows):
        cols.append(("params/" + head.name, f"params {head.short}", head))
    click.echo(f"{'run':<28} {'status':<11} {'epochs':>6} " + " ".join(f"{t:>{max(6, len(t))}}" for _, t, _ in cols)
               + f" {'best baseline':>20} {'verdict':>7}")
    marked = False
    for row, m in rows:
        total = row.config.get("protocol", {}).get("epochs", "?")
        best = catalogue.best_baseline(m)
        best_text = "-" if best is None else f"{best.title} {head.format(m.get(best.prefix + head.name))}"
        mark = "*" if supervised(row.config) else ""
        marked = marked or bool(mark)
        status = shown_status(out_dir, row.id, row.status)
        click.echo(f"{row.id + mark:<28} {status:<11} {f'{row.epochs_done}/{total}':>6} "
                   + " ".join(f"{c.format(m.get(key)):>{max(6, len(t))}}" for key, t, c in cols)
                   + f" {best_text:>20} {catalogue.verdict(m) or '-':>7}")
    if marked:
        click.echo("* supervised: trained with benchmark labels (landmark regularisation); its ranking is partly taught")


@cli.command()
@click.argument("run_id")
@OUT_DIR
@click.option("--figure", type=click.Path(dir_okay=False),
              help="also plot the pool of the last epoch: super-net accuracy histogram per BN mode (Fig. 6), and vs truth")
@click.option("--pool", "pool_file", type=click.Path(dir_okay=False),
              help="write one row per architecture and evaluation (.csv, or .json: one object per line)")
def show(run_id: str, out_dir: str, figure: str | None, pool_file: str | None) -> None:
    """Every evaluation of a run: super-net metrics next to the training-free baselines."""
    from supernet.config import supervised
    from supernet.evaluate import catalogue
    from supernet.runlock import shown_status

    store = _open_store(out_dir)
    row = store.get_run(run_id)
    if figure:
        _pool_figure(store, row.id, figure)
    if pool_file:
        _write_pool(store, row.id, pool_file)
    click.echo(f"run {row.id}  status {shown_status(out_dir, row.id, row.status)}  epochs {row.epochs_done}  "
               f"dir {row.run_dir}")
    if supervised(row.config):
        click.echo(f"supervised: {supervised(row.config)}")
    if row.message:
        click.echo(f"message: {row.message}")
    for ev in store.evaluations(row.id):
        m = ev["metrics"]
        click.echo(f"\nepoch {ev['epoch']}  bn={ev['bn']}  {ev['split']} ({ev['n_images']} images)  "
                   f"{ev['seconds']:.0f}s  {KIND_LABEL.get(ev['kind'], '')}")
        bases = catalogue.baselines_in(m)  # one column per baseline measured

        def line(label: str, name: str, sub: str = "", m: dict = m, bases: list = bases) -> str:  # 3 decimals
            return f"  {label:<18} {_f(m.get(sub + name)):>10}" + "".join(
                f" {_f(m.get(sub + b.prefix + name)):>{max(10, len(b.title))}}" for b in bases)

        click.echo(f"  {'metric':<18} {'super-net':>10}" + "".join(f" {b.title:>10}" for b in bases))
        for c in catalogue.METRICS:  # ranking metrics: the super-net's next to each baseline's
            if c.show and c.ranking:
                click.echo(line(c.name, c.name))
        for c in catalogue.METRICS:  # super-net only
            if c.show and not c.ranking:
                spread = f"   (std {c.format(m.get(c.std))})" if c.std else ""
                click.echo(f"  {c.name:<18} {c.format(m.get(c.name)):>10}{spread}")
        if m.get("psr_space_size"):
            click.echo(f"  {'P>R ranks within':<18} {int(m['psr_space_size']):,} architectures of the ground-truth "
                       f"table {Path(row.config.get('space', {}).get('ground_truth') or 'shipped').name}")
        head = catalogue.metric(catalogue.HEADLINE)
        if "skdt_lo" in m:
            click.echo(f"  {'95% intervals':<18} s-KdT [{_f(m.get('skdt_lo'))}, {_f(m.get('skdt_hi'))}]  "
                       f"KdT [{_f(m.get('kdt_lo'))}, {_f(m.get('kdt_hi'))}]  (pool resampled)")
        best = catalogue.best_baseline(m)
        if best is not None:
            line_text = f"  strongest baseline: {best.title} ({best.description}), {head.title} {_f(m.get(best.prefix + head.name))}"
            if catalogue.verdict(m) is not None:
                line_text += (f"; the super-net {catalogue.verdict(m)} it: difference {_f(m.get('vs_best_diff'))} "
                              f"[{_f(m.get('vs_best_lo'))}, {_f(m.get('vs_best_hi'))}]")
            click.echo(line_text)
        subs = sorted({k.split("/")[0] for k in m if k.startswith("sub")} | ({"pool"} if f"pool/{head.name}" in m else set()))
        for sub in subs:  # Baseline-v2: per sub-space rankings, their mean (the headline), the union pool
            click.echo(line(f"{sub} {head.title}", head.name, f"{sub}/"))
    finals = store.finals(row.id)
    if finals:
        click.echo("\nfinal trainings (supernet retrain)")
    for f in finals:
        acc = f"{f['test_acc']:.2f} %" if f["test_acc"] is not None else "-"
        bench = f"{f['ground_truth']:.2f} %" if f["ground_truth"] is not None else "-"
        click.echo(f"  {f['id']}  {shown_status(out_dir, f['id'], f['status'])}  epochs {f['epochs_done']}/"
                   f"{f['config']['final']['epochs']}  test {acc}  benchmark {bench}  {f['arch']}")


def _pool_figure(store, run_id: str, path: str) -> None:  # noqa: ANN001 - ResultStore, kept lazy
    import numpy as np

    from supernet.report.figures import plot_pool

    evals = [e for e in store.evaluations(run_id) if e["kind"] != "search"]
    if not evals:
        raise SupernetError(f"run {run_id} has no evaluation yet: nothing to plot")
    last = max(e["epoch"] for e in evals)
    latest = {}  # the newest evaluation of the last epoch per BN mode
    for e in evals:
        if e["epoch"] == last:
            latest[e["bn"]] = e
    groups = []
    for bn, e in sorted(latest.items()):
        rows = store.arch_results(e["id"])
        label = f"bn={bn}, s-KdT {_f(e['metrics'].get('skdt'))}"
        groups.append((label, np.array([r[1] for r in rows]), np.array([r[2] for r in rows])))
    click.echo(f"wrote {plot_pool(groups, path, title=f'{run_id}, epoch {last}', baseline=_best_baseline_points(store, e))}",
               err=True)


def _pool_rows(store, run_id: str) -> list[dict]:  # noqa: ANN001 - ResultStore, kept lazy
    """One row per (evaluation, architecture): the super-net's accuracy, ground truth, rank, parameters and
    every other stored score (proxies, the super-net's loss)."""
    out = []
    for e in store.evaluations(run_id):
        scores = store.arch_scores(e["id"])
        for arch, acc, truth, rank, params in store.arch_results(e["id"]):
            out.append({"evaluation": e["id"], "epoch": e["epoch"], "kind": e["kind"], "bn": e["bn"], "arch": arch,
                        "supernet_acc": acc, "ground_truth": truth, "gt_rank": rank, "params": params,
                        **{name: by_arch.get(arch) for name, by_arch in sorted(scores.items())}})
    return out


def _write_pool(store, run_id: str, path: str) -> None:  # noqa: ANN001 - ResultStore, kept lazy
    import csv

    rows = _pool_rows(store, run_id)
    if not rows:
        raise SupernetError(f"run {run_id} has no evaluation yet: no pool to write")
    if path.endswith(".json"):
        text = "".join(json.dumps(_finite(r), allow_nan=False) + "\n" for r in rows)
        Path(path).write_text(text)
    elif path.endswith(".csv"):
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise SupernetError(f"--pool {path}: give a .csv or .json file name")
    click.echo(f"wrote {len(rows)} rows to {path}", err=True)


def _finite(value: object) -> object:
    """JSON has no NaN: an undefined metric (a stored NaN) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _best_baseline_points(store, evaluation: dict):  # noqa: ANN001, ANN202 - ResultStore, kept lazy
    """(label, scores, ground truth) of an evaluation's strongest baseline, or None."""
    from supernet.evaluate import catalogue

    best = catalogue.best_baseline(evaluation["metrics"])
    if best is None:
        return None
    pool = store.pool_scores(evaluation["id"])
    scores = catalogue.baseline_scores({"params": pool.params, **pool.scores}).get(best.name)
    if scores is None:
        return None
    label = f"{best.title}, s-KdT {_f(evaluation['metrics'].get(best.prefix + catalogue.HEADLINE))}"
    return label, scores, pool.ground_truth


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_id")
@click.argument("overrides", nargs=-1)
@OUT_DIR
def evaluate(run_id: str, overrides: tuple[str, ...], out_dir: str) -> None:
    """Re-evaluate RUN_ID's checkpoint on its pool (e.g. bn=running, evaluation.max_images=2560)."""
    from supernet.trained import evaluate_run

    store = _open_store(out_dir)
    result = evaluate_run(store, run_id, list(overrides))
    _print_metrics(store.get_run(run_id).id, result.metrics)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, required=True, metavar="RUN_ID... [key=value ...]")
@click.option("--archs", default=20, show_default=True,
              help="architectures the loss averages (all of a space.subsample run's when it has no more)")
@click.option("--images", default=512, show_default=True, help="fixed training images (not augmented)")
@click.option("--steps", default=11, show_default=True, help="grid points per direction (odd)")
@click.option("--span", default=1.0, show_default=True, help="the grid covers [-span, span] along each direction")
@click.option("--seed", default=0, show_default=True, help="fixes the directions and the architectures")
@click.option("--figure", type=click.Path(dir_okay=False), help="contour plots side by side (PNG, PDF or SVG)")
@click.option("--save", type=click.Path(dir_okay=False), help="the grids as .npz (coords, loss per run)")
@OUT_DIR
def landscape(args: tuple[str, ...], archs: int, images: int, steps: int, span: float, seed: int,
              figure: str | None, save: str | None, out_dir: str) -> None:
    """Loss landscapes of trained super-nets (the paper's Fig. 7): the mean training loss of their
    architectures on a grid along two filter-normalised random directions. Compare a super-net with
    a stand-alone network by training one with space.subsample=1. key=value: evaluation-time keys
    (device, data.root, runtime.*, bn=...)."""
    import numpy as np

    from supernet.evaluate.landscape import check_grid
    from supernet.report.figures import plot_landscapes
    from supernet.trained import run_landscape

    unknown = [a for a in args if a.startswith("-")]
    if unknown:
        raise SupernetError(f"unknown option {unknown[0]}; see supernet landscape --help")
    run_ids = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    if not run_ids:
        raise SupernetError("name at least one run (supernet runs lists them)")
    if archs < 1 or images < 1:
        raise SupernetError("--archs and --images must be at least 1")
    check_grid(steps, span)
    store = _open_store(out_dir)
    panels, ids = [], []
    click.echo("| run | trained on | archs | center loss | border rise | local minima | non-convex share |")
    click.echo("|---|---|---|---|---|---|---|")
    for run_id in run_ids:
        row = store.get_run(run_id)
        ls, n = run_landscape(store, row.id, overrides, archs=archs, images=images, steps=steps, span=span, seed=seed)
        trained = row.config["space"].get("subsample") or "whole space"
        click.echo(f"| {row.id} | {trained} | {n} | {ls.center:.3f} | {ls.rise:.3f} | {ls.local_minima} | "
                   f"{ls.nonconvex_share:.2f} |")
        panels.append((f"{row.id} (trained on {trained} archs)" if trained != "whole space" else row.id, ls))
        ids.append(row.id)
    if save:
        with open(save, "wb") as f:  # a file object: np.savez would append .npz to a name without it
            np.savez(f, coords=panels[0][1].coords, runs=np.array(ids), loss=np.stack([ls.loss for _, ls in panels]))
        click.echo(f"wrote {save}", err=True)
    if figure:
        plot_landscapes(panels, figure, title=f"loss landscape, span {span}, {images} images")
        click.echo(f"wrote {figure}", err=True)


@cli.command()
@click.argument("space", type=SPACE)
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--full", is_flag=True, help="NB101: nasbench_full.tfrecord (all four budgets)")
@click.option("--no-verify", is_flag=True, help="darts_nds: skip checking parameter counts against f_proxy")
def convert(space: str, source: str, out: str, full: bool, no_verify: bool) -> None:
    """Convert an official benchmark file into a ground-truth table (use it as space.ground_truth=OUT).

    nasbench201: NAS-Bench-201-v1_*.pth (refused if loading it would execute code);
    nasbench101: nasbench_only108.tfrecord or, with --full, nasbench_full.tfrecord (no TensorFlow needed);
    darts_nds: DARTS.json of the NDS release (refused if its networks' parameter counts differ from ours).
    `supernet convert --help` lists what each registered space reads.
    """
    from supernet.registry import ConvertFlags, get_space

    plugin = get_space(space)
    if plugin.convert is None:
        raise SupernetError(f"space {space} has no converter")
    given = {"full": full, "verify": no_verify}
    wrong = [f"--{'no-verify' if k == 'verify' else k}" for k, on in given.items() if on and k not in plugin.convert_flags]
    if wrong:
        raise SupernetError(f"{', '.join(wrong)} does not apply to {space}")
    summary = plugin.convert(source, out, ConvertFlags(full=full, verify=not no_verify))
    if summary:
        click.echo(summary, err=True)
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
def keys(recipe: str | None) -> None:
    """Every config key with its value (defaults, or RECIPE's) and what it means."""
    from supernet.config import describe_keys, load_config

    for key, value, doc in describe_keys(load_config(recipe)):
        click.echo(f"{key:<32} {value!s:<14} {doc}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_id")
@click.argument("overrides", nargs=-1)
@click.option("--samples", default=100, show_default=True, help="architectures drawn and ranked by the super-net")
@click.option("--seed", type=int, default=None, help="draws another sample (default: the run's seed)")
@click.option("--show", "show_n", default=10, show_default=True, help="best architectures to print")
@OUT_DIR
def search(run_id: str, overrides: tuple[str, ...], samples: int, seed: int | None, show_n: int, out_dir: str) -> None:
    """Random-NAS with RUN_ID's super-net: rank a random sample by super-net accuracy, print the best.

    OVERRIDES as for `supernet evaluate` (e.g. bn=running, evaluation.top_k=5).
    """
    from supernet.evaluate.catalogue import headline
    from supernet.search import search_run

    store = _open_store(out_dir)
    result = search_run(store, run_id, samples, seed, list(overrides))
    m = result.evaluation.metrics
    click.echo(f"{'super-net':>9} {'truth':>7}  architecture")
    for arch, acc, truth in result.best(show_n):
        click.echo(f"{acc:9.2f} {truth:7.2f}  {arch}")
    click.echo(f"searched model (top {result.top_k} by super-net): ground truth "
               f"{_f(m.get('final_acc'), 2)}% (std {_f(m.get('final_acc_std'), 2)} over those {result.top_k}); of the sample: "
               f"{headline(m)}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("target", metavar="RUN_OR_ARCH")
@click.argument("overrides", nargs=-1)
@click.option("--recipe", type=click.Path(dir_okay=False),
              help="YAML of final.* keys over the space's benchmark protocol (see recipes/retrain-*.yaml)")
@click.option("--rank", default=1, show_default=True, help="with a run: train its K-th best architecture")
@OUT_DIR
def retrain(target: str, overrides: tuple[str, ...], recipe: str | None, rank: int, out_dir: str) -> None:
    """Train a searched architecture from scratch with its benchmark's final protocol, and test it.

    RUN_OR_ARCH: a completed run id (the best architecture of its newest `supernet search`, else of its final
    evaluation, by the super-net's score; stored next to the run) or an architecture of the space named by
    space.name=... (default nasbench201). OVERRIDES: final.* keys (e.g. final.epochs=600), runtime.*, device,
    data.root, data.max_train_images, seed. Re-running the same command resumes it.
    """
    from supernet.retrain import resolve
    from supernet.retrain import retrain as train_final

    job = resolve(target, list(overrides), recipe=recipe, out_dir=out_dir, rank=rank)
    fc = job.cfg.final

    def announce(done: int) -> None:
        click.echo(f"final training {job.id} of {job.arch} ({job.why}) -> {job.dir}"
                   + (f" (resuming from epoch {done})" if done else ""), err=True)

    def epoch_line(epoch: int, stats: dict) -> None:
        if job.cfg.progress:
            test = f"  test {stats['test_acc']:.2f} %" if stats.get("test_acc") is not None else ""
            click.echo(f"epoch {epoch + 1}/{fc.epochs}  loss {stats['train_loss']:.3f}  train {stats['train_acc']:.2f} %"
                       f"{test}  {stats['seconds']:.0f}s", err=True)

    row = train_final(job, on_start=announce, on_epoch=epoch_line)
    bench = f" (benchmark: {row['ground_truth']:.2f} %)" if row["ground_truth"] is not None else ""
    click.echo(f"{row['arch']}\ntest accuracy {row['test_acc']:.2f} %{bench}, {row['params']:,} parameters, "
               f"{fc.epochs} epoch{'s' if fc.epochs != 1 else ''}")


def _executor_options(f: Callable) -> Callable:
    for option in reversed([
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="local: one run after another here; ray: Ray tasks (this process alone writes the store)"),
        click.option("--ray-address", default=None, help="Ray cluster to join (default: start a local one)"),
        click.option("--gpus-per-run", type=float, default=0.0, show_default=True, help="Ray resources per run"),
        click.option("--cpus-per-run", type=float, default=1.0, show_default=True, help="Ray resources per run"),
    ]):
        f = option(f)
    return f


def _ray_options(executor: str, address: str | None, cpus_per_run: float, gpus_per_run: float) -> dict:
    return dict(address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run) if executor == "ray" else {}


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SupernetError(f"--seeds must be comma-separated integers, got '{text}'") from None


def _print_plan(items: list) -> None:
    for k, item in enumerate(items):
        click.echo(f"{k + 1:>3}/{len(items)}  seed {item.seed:<6} {item.level:<38} "
                   f"{item.config.protocol.epochs:>5} epochs  {item.config.run_id()}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--factor", "factor_name", required=True, help="one of `supernet factors`")
@click.option("--seeds", default="0", show_default=True, help="comma-separated seeds, e.g. 1268,1269,1270")
@click.option("--name", default=None, help="sweep name in the store (default: RECIPE's stem and the factor, e.g. nb201-lr)")
@click.option("--dry-run", is_flag=True, help="print the plan and stop")
@click.option("--no-compute-match", is_flag=True, help="keep the recipe's epochs for low-fidelity factors")
@_executor_options
def sweep(recipe: str, overrides: tuple[str, ...], factor_name: str, seeds: str, name: str | None,
          dry_run: bool, no_compute_match: bool, executor: str, ray_address: str | None, gpus_per_run: float,
          cpus_per_run: float) -> None:
    """Train RECIPE once per level of one factor and seed (key=value OVERRIDES apply to all runs).

    Finished runs are skipped and an interrupted one resumes, so re-running the command continues
    the sweep. `supernet report NAME` tabulates it.
    """
    from supernet.experiments.sweep import plan_sweep, run_sweep
    from supernet.factors import get_factor

    factor = get_factor(factor_name)
    items = plan_sweep(recipe, factor, _seeds(seeds), list(overrides), compute_match=not no_compute_match)
    _print_plan(items)
    if dry_run:
        return
    out = Path(items[0].config.out_dir)

    def started(k: int, item, run_id: str) -> None:  # noqa: ANN001 - SweepItem, kept lazy
        click.echo(f"[{k + 1}/{len(items)}] {factor.name} = {item.level}, seed {item.seed}: {run_id}", err=True)

    name = name or f"{Path(recipe).stem}-{factor.name}"
    outcomes = run_sweep(name, factor, items, out / "supernet.db", on_start=started, executor=executor,
                         **_ray_options(executor, ray_address, cpus_per_run, gpus_per_run))
    failed = [o for o in outcomes if o.status != "completed"]
    for o in failed:
        click.echo(f"failed: {o.item.level}, seed {o.item.seed} ({o.run_id}): {o.message}", err=True)
    click.echo(f"sweep '{name}': {len(outcomes) - len(failed)}/{len(outcomes)} runs completed; "
               f"supernet report {name} --out-dir {out}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--seeds", default="0", show_default=True, help="comma-separated seeds, e.g. 1268,1269,1270")
@click.option("--factors", default="bn,lr,epochs,weight_decay", show_default=True,
              help="the factors to tune, in order (the paper's: its four P_ws hyper-parameters)")
@click.option("--metric", default="final_acc", show_default=True, help="what the kept level maximises (mean over seeds)")
@click.option("--name", default=None, help="stage sweeps are stored as NAME-<factor> (default: RECIPE's stem + '-tune')")
@click.option("--write", "write_path", type=click.Path(dir_okay=False), help="write the tuned recipe here")
@_executor_options
def tune(recipe: str, overrides: tuple[str, ...], seeds: str, factors: str, metric: str, name: str | None,
         write_path: str | None, executor: str, ray_address: str | None, gpus_per_run: float, cpus_per_run: float) -> None:
    """Tune P_ws sequentially: sweep each factor from the best levels so far and keep its best level.

    Re-running the command resumes: finished runs are skipped. `supernet report NAME-<factor>` shows a stage.
    """
    from supernet.experiments.tune import tune as run_tuning
    from supernet.experiments.tune import tuned_overrides, write_recipe

    name = name or f"{Path(recipe).stem}-tune"

    def stage(factor: str, items: list) -> None:
        click.echo(f"\n== {factor}: {len(items)} runs", err=True)
        _print_plan(items)

    stages = run_tuning(recipe, _seeds(seeds), list(overrides), name=name, metric=metric, on_stage=stage,
                        factors=[f.strip() for f in factors.split(",") if f.strip()], executor=executor,
                        **_ray_options(executor, ray_address, cpus_per_run, gpus_per_run))
    for s in stages:
        click.echo(f"{s.factor:<14} {s.chosen.label:<38} {metric} {s.score:.3f}   (supernet report {s.sweep})")
    click.echo("tuned overrides: " + " ".join(tuned_overrides(stages)))
    if write_path:
        write_recipe(recipe, list(overrides), stages, write_path)
        click.echo(f"wrote {write_path}")


@cli.command()
@click.argument("name", required=False)
@OUT_DIR
@click.option("--figure", type=click.Path(dir_okay=False), help="also write the figure (PNG, PDF or SVG)")
@click.option("--meta", is_flag=True, help="instead: the paper's meta-evaluation (Fig. 4) over every completed run")
@click.option("--factors", "effects", is_flag=True,
              help="instead: each factor's effect on the final searched model, over every sweep (Fig. 10)")
@click.option("--space", type=SPACE, help="--factors: one space")
@click.option("--curves", type=click.Path(dir_okay=False),
              help="with NAME: Fig. 8, s-KdT and final searched model per epoch, a line per level (band: seeds' range)")
@click.option("--table4", is_flag=True,
              help="instead: Table 4, each space's Random-NAS baseline and tuned recipe (`supernet reference`)")
@click.option("--pooled", is_flag=True, help="with NAME: the authors' seed aggregation (one s-KdT over the seeds' "
              "pooled architectures, super-net accuracy averaged per architecture)")
@click.option("--floor", type=float, default=15.0, show_default=True,
              help="--pooled: drop runs whose mean super-net accuracy (%) is below this (the authors' tool: 15, analysis: 40)")
def report(name: str | None, out_dir: str, figure: str | None, meta: bool, effects: bool, space: str | None,
           curves: str | None, table4: bool, pooled: bool, floor: float) -> None:
    """The table (and figure) of sweep NAME: metrics per level, mean ± std over seeds. No NAME: list sweeps.

    --meta: per space, Spearman correlations across all completed super-nets between super-net accuracy,
    s-KdT and the final searched model (how well each predicts the others).

    --factors: per sweep, the final searched model of each level minus that of the space's Random-NAS
    reference runs (else the sweep's baseline level, the recipe itself); the best level is the headline.

    --table4: per space, the Random-NAS baseline and the tuned recipe next to the paper's figures.
    """
    from supernet.report.tables import markdown_table, sweep_rows

    if (name is not None) + meta + effects + table4 > 1:
        raise SupernetError("give one of: a sweep name, --meta, --factors, --table4")
    if space is not None and not effects:
        raise SupernetError("--space applies to --factors only")
    if (curves or pooled) and name is None:
        raise SupernetError(f"{'--curves' if curves else '--pooled'} needs a sweep NAME (`supernet report` lists them)")
    store = _open_store(out_dir)
    if effects:
        _report_effects(store, space, figure)
        return
    if table4:
        from supernet.report.table4 import markdown_table4, table4_rows

        rows = table4_rows(store)
        if not rows:
            raise SupernetError("no reference runs named yet: `supernet reference SPACE random-nas RUN...` and "
                                "`supernet reference SPACE tuned RUN...` (three seeds each)")
        click.echo("Table 4: final searched model, s-KdT and P>R (mean ± std over the completed reference runs)\n")
        click.echo(markdown_table4(rows))
        return
    if meta:
        from supernet.report.meta import markdown_meta, meta_evaluation, plot_meta

        rows = meta_evaluation(store)
        if not rows:
            raise SupernetError("no completed run with metrics in this store yet")
        click.echo("Spearman correlation across completed super-nets (the paper's Fig. 4)\n")
        click.echo(markdown_meta(rows))
        if figure:
            plot_meta(rows, figure)
            click.echo(f"\nwrote {figure}", err=True)
        return
    if name is None:
        for sweep_name in store.sweeps():
            click.echo(sweep_name)
        return
    if pooled:
        from supernet.report.pooled import markdown_pooled, pooled_levels

        click.echo(f"sweep '{name}', the authors' aggregation: one s-KdT over the pooled architectures of the seeds, "
                   f"runs below {floor:g} % mean super-net accuracy dropped\n")
        click.echo(markdown_pooled(pooled_levels(store, name, floor), floor))
        return
    if curves:
        from supernet.report.curves import markdown_curves, plot_curves, sweep_curves

        lines = sweep_curves(store, name)
        click.echo(f"sweep '{name}' per epoch (the paper's Fig. 8): mean over completed seeds [their min, max]\n")
        click.echo(markdown_curves(lines))
        click.echo(f"\nwrote {plot_curves(lines, curves, title=name)}", err=True)
        return
    rows = sweep_rows(store, name)
    click.echo(f"sweep '{name}', factor '{rows[0].factor}' (mean ± sample std over completed seeds)\n")
    click.echo(markdown_table(rows))
    if figure:
        from supernet.report.figures import plot_sweep

        click.echo(f"\nwrote {plot_sweep(rows, figure, title=rows[0].factor if name == rows[0].factor else f'{rows[0].factor} ({name})')}", err=True)


def _report_effects(store, space: str | None, figure: str | None) -> None:  # noqa: ANN001 - ResultStore, kept lazy
    from supernet.report.effects import factor_effects, markdown_effects, plot_effects

    rows = factor_effects(store, space)
    if not rows:
        raise SupernetError(f"no sweep with a completed run{f' in {space}' if space else ''} in this store yet")
    click.echo("Effect of each factor on the final searched model (the paper's Fig. 10): level minus the space's "
               "Random-NAS reference runs (`supernet reference`; else the sweep's baseline level), per seed where both "
               "have it, accuracy points ± standard error\n")
    click.echo(markdown_effects(rows))
    if figure:
        plot_effects(rows, figure)
        click.echo(f"\nwrote {figure}", err=True)


@cli.command()
@click.argument("name", type=click.Choice(["nasbench101", "nasbench201", "darts_nds", "cifar10"]))
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="keep the downloaded file here (default: "
              "the cache's downloads/, CIFAR-10 in the cache's cifar10/)")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="the cache (default: $SUPERNET_CACHE or ~/.cache/supernet)")
@click.option("--url", help="another URL or a mirror (file:///PATH for a file downloaded by hand)")
def download(name: str, directory: str | None, cache_dir: str | None, url: str | None) -> None:
    """Fetch an official benchmark file (or CIFAR-10), resuming a partial download, check it, and convert it:
    then `space.ground_truth=official` uses it (CIFAR-10: runs without data.root use it)."""
    from tqdm import tqdm

    from supernet.data.cifar import cache_home
    from supernet.downloads import download as fetch_and_convert

    cache = cache_home(Path(cache_dir) if cache_dir else None)
    with tqdm(unit="B", unit_scale=True, desc=name, leave=False) as bar:
        where, summary = fetch_and_convert(name, cache, url, Path(directory) if directory else None, bar.update)
    click.echo(f"{name}: {summary} -> {where}")


@cli.command()
@click.argument("space", type=SPACE)
@click.argument("role", type=click.Choice(["random-nas", "tuned"]))
@click.argument("run_ids", nargs=-1)
@OUT_DIR
def reference(space: str, role: str, run_ids: tuple[str, ...], out_dir: str) -> None:
    """Name SPACE's Random-NAS baseline or tuned-recipe runs (RUN_IDS, usually three seeds), which
    `report --factors` (Fig. 10) and `report --table4` compare against. No RUN_IDS: print the named ones."""
    store = _open_store(out_dir)
    if not run_ids:
        for run_id in store.references(space, role):
            click.echo(run_id)
        return
    rows = [store.get_run(r) for r in run_ids]  # prefixes resolve; unknown ids are refused here
    other = [r.id for r in rows if r.space != space]
    if other:
        raise SupernetError(f"run {other[0]} is not a {space} run")
    store.set_references(space, role, [r.id for r in rows])
    click.echo(f"{space} {role}: {', '.join(r.id for r in rows)}", err=True)


@cli.command()
@click.option("--space", type=SPACE, help="only factors of this space")
def factors(space: str | None) -> None:
    """The paper's 14 factors (Table 1): group, config keys, and the overrides of each level swept."""
    from supernet.factors import FACTORS

    for f in FACTORS:
        if space is not None and space not in f.spaces:
            continue
        click.echo(f"{f.name:<17} {f.group:<22} {f.title}  [{', '.join(f.spaces)}]  ({f.source})")
        for s in [space] if space else f.spaces:
            for level in f.levels_for(s):
                where = "" if space or len(f.spaces) == 1 else f"{s + ':':<13}"
                click.echo(f"    {where}{level.label:<38} {' '.join(level.overrides)}")


@cli.command()
@click.argument("space", type=SPACE)
@click.argument("archs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.option("--ground-truth", "table", help="a converted table (.npz) to look them up in (darts_nds: the only source)")
def arch(space: str, archs: tuple[str, ...], as_json: bool, table: str | None) -> None:
    """Describe architectures: key, unique key, parameters, ground truth. ARCH '-' reads stdin."""
    from supernet.registry import describe

    texts = [line.strip() for a in archs for line in (sys.stdin if a == "-" else [a]) if line.strip()]
    _print_rows(describe(space, texts, table), as_json)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("space", type=SPACE)
@click.argument("args", nargs=-1, required=True, metavar="ARCH... [key=value ...]")
@click.option("--data", "data_root", help="CIFAR-10 (batches, image folder or .tar.gz): the proxies' batch")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def proxies(space: str, args: tuple[str, ...], data_root: str | None, as_json: bool) -> None:
    """Training-free proxy scores of architectures (ARCH '-' reads stdin), as an evaluation computes them.

    key=value: evaluation.proxies=LIST, evaluation.proxy_batch_size=N, evaluation.proxy_seed=S,
    data.cache_dir=DIR (scores are cached there), space.ground_truth=TABLE, device=cpu|cuda.
    """
    from supernet.zerocost import proxy_rows

    overrides = [a for a in args if "=" in a] + ([f"data.root={data_root}"] if data_root else [])
    texts = [line.strip() for a in args if "=" not in a for line in (sys.stdin if a == "-" else [a]) if line.strip()]
    _print_rows(proxy_rows(space, texts, overrides), as_json)


def _print_rows(rows: list[dict], as_json: bool) -> None:
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))  # union: ground truth may cover some rows only
    click.echo("\t".join(cols))
    for r in rows:
        click.echo("\t".join(str(r.get(c, "-")) for c in cols))


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_metrics(run_id: str, m: dict[str, float]) -> None:
    from supernet.evaluate.catalogue import summary

    click.echo(f"{run_id}: {summary(m)}")


def terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (timeouts, schedulers, Ray, `kill`) becomes an interruption, so the run is marked as such. The
    bench scripts install it too: started with `&` by a non-interactive shell, they ignore SIGINT."""
    raise KeyboardInterrupt


def main() -> None:
    import signal
    import sqlite3

    signal.signal(signal.SIGTERM, terminate_as_interrupt)
    try:
        cli.main(standalone_mode=False)
    except SupernetError as exc:
        for line in str(exc).splitlines() or [""]:  # several bad config values: one `error:` line each
            click.echo(f"error: {line}", err=True)
        sys.exit(2)
    except (OSError, sqlite3.OperationalError) as exc:  # unwritable out_dir, full disk, locked database
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except sqlite3.DatabaseError as exc:  # a store whose header is valid but whose later pages are damaged
        import traceback

        from supernet.store import ResultStore

        stores = [f.f_locals["self"].path for f, _ in traceback.walk_tb(exc.__traceback__)
                  if isinstance(f.f_locals.get("self"), ResultStore)]
        where = f"results store {stores[-1]}" if stores else "the results store (supernet.db in out_dir)"
        click.echo(f"error: {where} is damaged ({exc}): restore it from a backup, or move it aside to start a new "
                   "one (`sqlite3 FILE .recover` may salvage its rows)", err=True)
        sys.exit(2)
    except click.exceptions.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
        click.echo("interrupted: re-run the same command to resume (training continues from the last checkpoint)",
                   err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted: re-run the same command to resume", err=True)
        sys.exit(130)
