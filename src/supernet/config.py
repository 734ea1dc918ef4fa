"""Typed run configuration: a YAML recipe plus ``key=value`` overrides.

One pydantic model per concept of the paper (space, f_ws, P_ws, evaluation, data) so a factor of
Table 1 is always one explicit, validated config path (docs/usage.md maps them). Unknown keys are refused
with the closest valid key, and bad values name the allowed ones, because a silently ignored typo
in an ablation would invalidate the whole sweep.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from supernet.errors import SupernetError
from supernet.groundtruth.shipped import is_shipped
from supernet.registry import get_space, space_names

# Evaluation keys that define a run (its pool and when it is evaluated); all others may change
# when a checkpoint is re-evaluated, and do not enter the run id, except the EVAL_LEVEL_KEYS (see run_id).
RUN_IDENTITY_EVAL_KEYS = ("every", "pool_size", "per_subspace", "pool_unique")
ADDED_IDENTITY_EVAL_KEYS = ("pool_unique",)  # added later: in the id only when set, so older ids hold
# Evaluation keys that are levels of a factor: a non-default value enters the run id (the default stays out,
# so older ids hold); bn_batches only with bn=recalibrate, the one mode it acts in.
EVAL_LEVEL_KEYS = ("bn", "bn_batches", "score", "ensemble")
# Keys added after runs were stored, as (section, key); left out of the run id at their defaults, so those
# runs keep their ids and resume.
ADDED_KEYS = (("supernet", "path_dropout"), ("supernet", "global_dropout"), ("space", "subsample"),
              ("protocol", "landmarks"), ("protocol", "landmark_coef"), ("protocol", "landmark_warmup"),
              ("protocol", "landmark_every"), ("protocol", "landmark_margin"), ("supernet", "few_shot"),
              ("supernet", "few_shot_slot"), ("supernet", "few_shot_warmup"), ("supernet", "few_shot_compute"))
# Marks a key only some spaces support: it must stay at its default unless the space's plug-in lists it
# in ``options`` (see supernet.registry).
SPACE_OPTION = {"space_option": True}
# Documented maxima of the super-net's size: far above every published setting (C <= 128, N <= 20), low enough
# that a typo (supernet.layers=100000) is refused instead of hanging while the network is built.
MAX_CHANNELS = 256
MAX_LAYERS = 64


class _Strict(BaseModel):
    # allow_inf_nan=False: every float key must be finite (protocol.lr=inf or nan would train to NaN silently).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SpaceConfig(_Strict):
    name: str = Field("nasbench201", description="search space (`supernet factors` and the registry list them)")
    subspace: int | None = Field(
        None, ge=1, le=5, description="NB101: only cells with this many vertices feeding the output (SPEC 6.5)",
        json_schema_extra=SPACE_OPTION,
    )
    subsample: int | None = Field(
        None, ge=1, description="train on a fixed random subset of N architectures with ground truth (the authors' "
        "nasbench201_subsample; Fig. 7 uses 300; 1 trains one stand-alone network through the super-net)",
    )
    ground_truth: str | None = Field(
        None,
        description="table (.npz), or official (the one `supernet download SPACE` converted); default: shipped NB201 "
        "table / NB101 500 validation archs; darts_nds: required (`supernet convert darts_nds DARTS.json OUT.npz`)",
    )

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in space_names():
            raise ValueError(f"unknown space; available: {', '.join(space_names())}")
        return name


class SupernetConfig(_Strict):
    """f_ws: how the super-net is built."""

    channels: int = Field(16, ge=1, le=MAX_CHANNELS, description=f"initial channels C (at most {MAX_CHANNELS})")
    layers: int = Field(
        5, ge=1, le=MAX_LAYERS,
        description=f"cells per stage N (NB201, NB101); all cells L (darts_nds, >= 3); at most {MAX_LAYERS}",
    )
    op_placement: Literal["node", "edge"] | None = Field(
        None, description="NB201, DARTS-NDS: node (default; the authors', SPEC 4.2-4.3) or edge (the standard super-net)",
        json_schema_extra=SPACE_OPTION,
    )
    bn_affine: bool = Field(True, description="learnable BN scale and shift (match the stand-alone protocol)")
    bn_track_stats: bool = Field(
        False, description="keep running statistics (needed to evaluate with bn=running)"
    )
    num_classes: int = Field(10, ge=2, description="classifier outputs")
    channel_strategy: Literal["fixed", "shuffle", "interpolate", "disabled"] = Field(
        "fixed", description="NB101 dynamic channels; disabled needs space.subspace (one super-net per sub-space)",
        json_schema_extra=SPACE_OPTION,
    )
    wsbn: bool = Field(
        False, description="WSBN: NB101 one BN per set of incoming vertices; DARTS-NDS (ops on nodes) one per source",
        json_schema_extra=SPACE_OPTION,
    )
    ofa_kernel: bool = Field(
        False, description="OFA kernels: NB101 conv1x1/conv3x3 share a 3x3; DARTS-NDS sep_conv and dil_conv 3x3/5x5 a 5x5",
        json_schema_extra=SPACE_OPTION,
    )
    path_dropout: float = Field(
        0.0, ge=0, lt=1, description="drop-path rate on cell outputs, scheduled deeper = more (NAO; SPEC 6.8)"
    )
    global_dropout: float = Field(0.0, ge=0, lt=1, description="dropout rate before the classifier")
    few_shot: int = Field(
        1, ge=1, le=64, description="few-shot super-net (Zhao et al. 2021): after few_shot_warmup epochs, one "
        "sub-super-net per op of op slot few_shot_slot (NB201: 5); 1: one-shot", json_schema_extra=SPACE_OPTION,
    )
    few_shot_slot: int = Field(0, ge=0, description="the op slot the few-shot split is on (NB201: edge 0-5)",
                               json_schema_extra=SPACE_OPTION)
    few_shot_warmup: int = Field(20, ge=0, description="one-shot epochs before the few-shot split",
                                 json_schema_extra=SPACE_OPTION)
    few_shot_compute: Literal["paper", "matched"] = Field(
        "paper", description="paper: every step trains each sub-super-net (each gets the remaining epochs); "
        "matched: one path per step, routed to its sub-super-net (the one-shot recipe's compute)",
        json_schema_extra=SPACE_OPTION,
    )


class ProtocolConfig(_Strict):
    """P_ws: how the super-net is trained."""

    epochs: int = Field(400, ge=1, description="training epochs (also the cosine schedule length)")
    batch_size: int = Field(256, ge=1, description="one sampled architecture per batch")
    lr: float = Field(0.025, gt=0, description="initial SGD learning rate")
    lr_min: float = Field(0.001, ge=0, description="cosine schedule floor")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(5e-4, ge=0, description="L2 weight decay")
    grad_clip: float = Field(5.0, gt=0, description="gradient-norm clipping")
    sampler: Literal["uniform", "encoding", "fairnas", "unique"] = Field(
        "uniform",
        description="uniform over architectures, over encodings (Random-NAS), FairNAS (|ops| paths per step), or "
        "unique: uniform over isomorphism classes (Ning et al. 2021; NB201's 6,466)",
    )
    validate_every_epoch: bool = Field(
        True, description="per-epoch accuracy on the held-out train part, one random arch per batch"
    )
    landmarks: int = Field(
        0, ge=0, le=10_000, description="landmark regularisation (Yu et al. 2021): architectures with known ground "
        "truth, outside the pool, whose pairwise order the super-net's losses must follow (0: off; uses benchmark "
        "labels: the run is supervised)",
    )
    landmark_coef: float = Field(10.0, ge=0, description="full coefficient of the landmark ranking loss")
    landmark_warmup: int = Field(5, ge=0, description="epochs before the landmark loss starts (then a rising cosine)")
    landmark_every: int = Field(1, ge=1, description="a landmark pair every N steps (each costs two more passes)")
    landmark_margin: float = Field(0.0, ge=0, description="hinge margin: the better landmark's loss must be this "
                                   "much below the worse one's")


class EvaluationConfig(_Strict):
    every: int = Field(30, ge=0, description="evaluate the pool every E epochs (0: only at the end)")
    pool_size: Annotated[int, Field(ge=2)] | Literal["all"] = Field(
        200, description="architectures drawn without replacement from the seed; all: every architecture with "
        "ground truth (NB201: 15,625; evaluated in chunks stored as they finish, so a stopped evaluation resumes)",
    )
    pool_unique: bool = Field(False, description="draw the pool from one architecture per isomorphism class only "
                              "(NB201: 6,466; the first of each class in table order)")
    bn: Literal["batch", "running", "recalibrate"] = Field(
        "batch", description="batch: batch statistics at evaluation (the paper's fix); running: tracked; "
        "recalibrate: per architecture, statistics of evaluation.bn_batches training batches (SPOS)"
    )
    bn_batches: int = Field(8, ge=1, le=10_000, description="bn=recalibrate: fixed training batches (of the "
                            "evaluation batch size) whose statistics each architecture is evaluated with")
    score: Literal["accuracy", "loss", "vote"] = Field(
        "accuracy", description="rank by super-net accuracy; by its mean cross-entropy (lower is better; "
        "Ning et al. 2021); or vote: its accuracy as a fourth voter beside synflow, jacov and snip (mean rank)"
    )
    ensemble: int = Field(1, ge=1, le=100, description="score = mean over the last K epochs' weights (temporal "
                          "ensemble); training keeps that many snapshots")
    batch_size: int | None = Field(None, ge=1, description="default: the training batch size")
    split: Literal["test", "valid"] = Field("test", description="test set, or the held-out part of train")
    max_images: int | None = Field(None, ge=1, description="evaluate on a fixed random subset of N images")
    skdt_threshold: float = Field(1e-3, gt=0, description="sparse Kendall-Tau bucket width (fraction)")
    skdt_variant: Literal["code", "clean"] = Field("code", description="the authors' construction, or the clean one")
    psr_form: Literal["code", "paper"] = Field("code", description="P>R as in the authors' code, or as printed")
    top_k: int = Field(3, ge=1, description="architectures selected for the final searched model and P>R")
    ground_truth: str | None = Field(None, description="dataset/split column; default cifar10/test (NB101 val500: cifar10/valid)")
    proxies: str = Field(
        "all", description="training-free proxies scored on every pool next to the super-net (params always): all, "
        "none, or a comma list of flops,synflow,nwot,jacov,snip,grad_norm",
    )
    proxy_batch_size: int = Field(64, ge=2, description="training images in the proxies' one fixed batch")
    proxy_seed: int = Field(0, ge=0, description="draws the proxies' batch and initialises their networks "
                            "(fixed, not the run seed: runs of every seed share cached scores)")
    bootstrap: int = Field(1000, ge=0, description="pool resamples for 95% intervals and the verdict vs the best "
                           "baseline (0: off)")
    per_subspace: bool = Field(
        False, description="NB101 Baseline-v2: a pool per sub-space, metrics per sub-space and their mean",
        json_schema_extra=SPACE_OPTION,
    )


    @field_validator("proxies")
    @classmethod
    def _known_proxies(cls, text: str) -> str:
        proxy_names(text)
        return text

    @model_validator(mode="after")
    def _vote_has_its_voters(self) -> EvaluationConfig:
        from supernet.evaluate.catalogue import VOTERS

        missing = [v for v in VOTERS if v not in self.proxy_list()]
        if self.score == "vote" and missing:
            raise ValueError(f"evaluation.score=vote ranks by the super-net together with the proxies "
                             f"{', '.join(VOTERS)}; evaluation.proxies={self.proxies} lacks {', '.join(missing)}")
        return self

    def proxy_list(self) -> tuple[str, ...]:
        return proxy_names(self.proxies)


def proxy_names(text: str) -> tuple[str, ...]:
    """``evaluation.proxies`` as names; checked against the baselines table (no torch needed)."""
    from supernet.evaluate.catalogue import PROXIES

    if text.strip() == "all":
        return PROXIES
    if text.strip() in ("none", ""):
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxy '{unknown[0]}'; known: {', '.join(PROXIES)} (or all, none; params is "
                         "always measured)")
    return names


class DataConfig(_Strict):
    root: str | None = Field(None, description="official batches dir, image folder, or .tar.gz of one; default: "
                             "CIFAR-10 downloaded once (md5-checked) into CACHE_DIR/cifar10")
    train_portion: float = Field(0.5, gt=0, le=1, description="share of the train set the super-net trains on")
    max_train_images: int | None = Field(None, ge=1, description="random subset of the train set")
    cache_dir: str | None = Field(None, description="decoded-array cache (default ~/.cache/supernet)")


class RuntimeConfig(_Strict):
    """How a run uses the hardware. Only ``precision`` changes results beyond float rounding, so it
    alone enters the run id (and only when it is not the fp32 default, keeping older ids valid)."""

    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: autocast forward passes to bfloat16 (GPU fast path; weights stay fp32)"
    )
    channels_last: bool | None = Field(
        None, description="NHWC images and weights (fast cuDNN kernels); default: on for cuda, off for cpu"
    )
    cudnn_benchmark: bool = Field(True, description="let cuDNN time its kernels per shape (cuda only)")


class LoggingConfig(_Strict):
    """Where a run's progress is also written; never part of a run's identity."""

    tensorboard: bool = Field(False, description="also write TensorBoard events to RUN_DIR/tensorboard (needs the "
                              "tensorboard extra)")


class FinalConfig(_Strict):
    """The evaluation phase (`supernet retrain`): a searched architecture trained from scratch as its benchmark
    trained it. Each space's plug-in supplies its benchmark's protocol (``SpacePlugin.final``), applied over these
    defaults before a recipe's and the command line's keys; never part of a super-net run's identity."""

    epochs: int = Field(200, ge=1, description="training epochs (also the cosine schedule length)")
    batch_size: int = Field(256, ge=1, description="training batch size")
    optimizer: Literal["sgd", "rmsprop"] = Field("sgd", description="sgd (NB201, DARTS); rmsprop (NB101: TensorFlow's "
                                                  "RMSProp with epsilon 1, momentum)")
    lr: float = Field(0.1, gt=0, description="initial learning rate")
    lr_min: float = Field(0.0, ge=0, description="cosine schedule floor")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum")
    nesterov: bool = Field(True, description="Nesterov momentum (sgd only)")
    weight_decay: float = Field(5e-4, ge=0, description="L2 weight decay")
    grad_clip: float = Field(0.0, ge=0, description="gradient-norm clipping (0: none)")
    cutout: int = Field(0, ge=0, le=32, description="side of the square zeroed in each training image (0: none)")
    train_portion: float = Field(1.0, gt=0, le=1, description="share of the training set trained on (the rest is "
                                 "held out and reported as validation accuracy; NB101 trained on 40k of 50k)")
    eval_every: int = Field(10, ge=0, description="test accuracy every E epochs (0: only at the end)")
    channels: int | None = Field(None, ge=1, le=MAX_CHANNELS, description="initial channels (None: the benchmark's "
                                 "network of the architecture)", json_schema_extra=SPACE_OPTION)
    layers: int | None = Field(None, ge=3, le=MAX_LAYERS, description="cells (None: the benchmark's)",
                               json_schema_extra=SPACE_OPTION)
    auxiliary_weight: float = Field(0.0, ge=0, description="weight of the auxiliary head's loss (0: no auxiliary "
                                    "head)", json_schema_extra=SPACE_OPTION)
    drop_path: float = Field(0.0, ge=0, lt=1, description="drop-path probability of every op, raised linearly "
                             "from 0 over the epochs (DARTS)", json_schema_extra=SPACE_OPTION)


class Config(_Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9._-]+$", description="prefix of the run id (letters, digits, . _ -)")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="fixes split, pool, sampled paths and initialisation")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available")
    out_dir: str = Field("runs", description="holds supernet.db and one directory per run")
    resume: bool = Field(True, description="continue from the run's last checkpoint when it exists")
    progress: bool = Field(True, description="progress bars")
    space: SpaceConfig = SpaceConfig()
    supernet: SupernetConfig = SupernetConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    data: DataConfig = DataConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    logging: LoggingConfig = LoggingConfig()
    final: FinalConfig = FinalConfig()

    @model_validator(mode="after")
    def _factors_fit_the_space(self) -> Config:
        s, ev, p = self.supernet, self.evaluation, self.protocol
        if ev.pool_size != "all" and ev.top_k > ev.pool_size:
            raise ValueError(f"evaluation.top_k={ev.top_k} exceeds evaluation.pool_size={ev.pool_size}")
        if ev.bn == "running" and not s.bn_track_stats:
            raise ValueError("evaluation.bn=running needs supernet.bn_track_stats=true (no running statistics otherwise)")
        if p.lr_min > p.lr:
            raise ValueError(f"protocol.lr_min={p.lr_min} exceeds protocol.lr={p.lr}")
        if p.landmarks == 1:
            raise ValueError("protocol.landmarks=1: a ranking loss needs pairs; use 0 (off) or at least 2")
        if p.landmarks and p.landmark_warmup >= p.epochs:
            raise ValueError(f"protocol.landmark_warmup={p.landmark_warmup} leaves no epoch of the {p.epochs} for the "
                             "landmark loss; lower it")
        if s.few_shot > 1 and s.few_shot_warmup >= p.epochs:
            raise ValueError(f"supernet.few_shot_warmup={s.few_shot_warmup} leaves no epoch of the {p.epochs} after "
                             "the split; lower it")
        if ev.ensemble > p.epochs:
            raise ValueError(f"evaluation.ensemble={ev.ensemble} exceeds the {p.epochs} epochs (one snapshot each)")
        plugin = get_space(self.space.name)
        for key, default in SPACE_OPTIONS.items():
            value = self.value(key)
            if value != default and key not in plugin.options:
                others = _spaces_with(key)
                raise ValueError(f"{key}={_text(value)} is not available for {plugin.name}"
                                 + (f" (a {' / '.join(others)} option)" if others else ""))
        for key, reasons in plugin.refused.items():
            value = self.value(key)
            if value in reasons:
                raise ValueError(f"{key}={_text(value)} is not available for {plugin.name}: {reasons[value]}")
        if plugin.validate is not None:
            plugin.validate(self)
        if self.space.subsample is not None and p.sampler != "uniform":
            raise ValueError(f"space.subsample trains on a fixed list of architectures, drawn uniformly; "
                             f"protocol.sampler={p.sampler} would leave it (use uniform)")
        return self

    def value(self, key: str) -> Any:
        """The value of a dotted key, e.g. ``cfg.value("protocol.lr")``."""
        node: Any = self
        for part in key.split("."):
            node = getattr(node, part)
        return node

    def placement(self) -> Literal["node", "edge"]:
        return self.supernet.op_placement or "node"

    def run_id(self) -> str:
        """Deterministic id: re-running the same experiment finds (and resumes) the same run."""
        ident = self.model_dump(exclude={"device", "out_dir", "resume", "progress", "logging", "final"})
        ident["evaluation"] = {k: ident["evaluation"][k] for k in RUN_IDENTITY_EVAL_KEYS
                               if k not in ADDED_IDENTITY_EVAL_KEYS or ident["evaluation"][k]}
        for key in EVAL_LEVEL_KEYS:
            # How the headline evaluations score (BN mode, score, ensemble) is a level of a factor: that level
            # must not share the run (and its metrics) of a recipe that differs in nothing else. Defaults left
            # out: ids stay.
            if key == "bn_batches" and self.evaluation.bn != "recalibrate":
                continue
            if getattr(self.evaluation, key) != EvaluationConfig.model_fields[key].default:
                ident["evaluation"][key] = getattr(self.evaluation, key)
        if "supernet.op_placement" in get_space(self.space.name).options:
            ident["supernet"]["op_placement"] = self.placement()
        ident["data"].pop("cache_dir")
        for section, key in ADDED_KEYS:  # keys added after runs existed: only a non-default value counts
            if ident[section][key] == type(getattr(self, section)).model_fields[key].default:
                del ident[section][key]
        runtime = ident.pop("runtime")
        if runtime["precision"] != "fp32":
            ident["precision"] = runtime["precision"]
        digest = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.name}-s{self.seed}-{digest}"


def supervised(config: dict[str, Any]) -> str | None:
    """Why a stored run's config uses benchmark labels in training (None: it does not). Such a run's
    ranking is partly taught, so every listing marks it."""
    landmarks = config.get("protocol", {}).get("landmarks", 0)
    return f"protocol.landmarks={landmarks} (landmark ranking loss on ground truth)" if landmarks else None


def _all_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            paths.extend(_all_paths(ann, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


VALID_KEYS: list[str] = _all_paths(Config)


def _space_options(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(_space_options(ann, f"{prefix}{name}."))
        elif isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("space_option"):
            out[f"{prefix}{name}"] = field.default
    return out


SPACE_OPTIONS: dict[str, Any] = _space_options(Config)  # dotted key -> default


def _spaces_with(key: str) -> list[str]:
    return [get_space(n).title for n in space_names() if key in get_space(n).options]


def _text(value: Any) -> str:
    """As a user writes it in an override (true, not True)."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def describe_keys(cfg: Config) -> list[tuple[str, Any, str]]:
    """(dotted key, value in ``cfg``, description) for every leaf of the config."""
    rows = []
    for path in VALID_KEYS:
        node: Any = cfg
        model: type[BaseModel] = Config
        for part in path.split("."):
            field = model.model_fields[part]
            node = getattr(node, part)
            if isinstance(node, BaseModel):
                model = type(node)
        rows.append((path, node, field.description or ""))
    return rows


def _suggest(key: str) -> str:
    # A key without a section is matched on the last component (the user forgot the section).
    close = difflib.get_close_matches(key, VALID_KEYS, n=1, cutoff=0.4) if "." in key else []
    if not close:
        tail: dict[str, str] = {}
        for p in VALID_KEYS:  # the first section holding a name wins (protocol.lr before final.lr)
            tail.setdefault(p.rsplit(".", 1)[-1], p)
        hit = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(tail), n=1, cutoff=0.6)
        close = [tail[hit[0]]] if hit else []
    return f"; did you mean '{close[0]}'?" if close else ""


def _is_text(key: str) -> bool:
    """Text-valued keys keep the raw string: YAML would turn name=2024 into a number, 0123 into 83."""
    model: type[BaseModel] = Config
    parts = key.split(".")
    for part in parts[:-1]:
        field = model.model_fields.get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return False
        model = field.annotation
    field = model.model_fields.get(parts[-1])
    return field is not None and field.annotation in (str, str | None)


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise SupernetError(f"override '{text}' is not of the form key=value (e.g. protocol.epochs=10)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if _is_text(key):
        return key, (raw if raw.strip() not in ("", "null", "~") else None)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def _set_path(tree: dict[str, Any], key: str, value: Any) -> None:
    if key not in VALID_KEYS:
        raise SupernetError(f"unknown config key '{key}'{_suggest(key)}")
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SupernetError(f"config key '{part}' is a section, not a value")
    node[parts[-1]] = value


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested tree of keys as dotted key -> value."""
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, f"{path}."))
        else:
            flat[path] = v
    return flat


def build_config(tree: dict[str, Any] | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    merged: dict[str, Any] = {}
    for key, value in flatten(tree or {}).items():
        _set_path(merged, key, value)
    for text in overrides:
        key, value = parse_override(text)
        _set_path(merged, key, value)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise SupernetError(_format_validation(exc)) from None


def _format_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if not loc:  # a cross-field rule of the whole config
            lines.append(str(err["msg"]).removeprefix("Value error, "))
        else:
            shown = repr(err["input"])
            shown = shown if len(shown) <= 100 else shown[:97] + "..."  # errors quote at most ~100 characters
            lines.append(f"bad value for '{loc}': {shown}: {err['msg']}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key: the base constructor refuses it
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SupernetError(f"key '{key}' appears twice in one mapping (lines {seen[key]} and {line}); "
                                    "keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_config(recipe: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    return build_config(load_recipe(recipe) if recipe is not None else {}, overrides)


def load_recipe(recipe: str | Path) -> dict[str, Any]:
    """A recipe file's tree of keys, as written (checked key by key when a config is built from it)."""
    path = Path(recipe)
    if not path.is_file():
        raise SupernetError(f"recipe '{recipe}' not found (expected a YAML file, e.g. recipes/nb201.yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise SupernetError(f"recipe '{recipe}' is not UTF-8 text (line {line}, byte {exc.start}: "
                            f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from None
    try:
        loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise SupernetError(f"recipe '{recipe}' is not valid YAML: {' '.join(str(exc).split())}") from None
    except SupernetError as exc:
        raise SupernetError(f"recipe '{recipe}': {exc}") from None
    except RecursionError:
        raise SupernetError(f"recipe '{recipe}' is nested too deeply to be a recipe") from None
    if loaded is None:
        raise SupernetError(f"recipe '{recipe}' is empty: give it at least one config key (or leave the recipe "
                            "out for the defaults)")
    if not isinstance(loaded, dict):
        raise SupernetError(f"recipe '{recipe}' must be a mapping of config keys")
    return loaded


def absolute_paths(cfg: Config) -> Config:
    """Stored configs must work from any directory: resolve every path the user gave (in place)."""
    if cfg.data.root is not None:
        cfg.data.root = str(Path(cfg.data.root).expanduser().resolve())
    if cfg.data.cache_dir is not None:
        cfg.data.cache_dir = str(Path(cfg.data.cache_dir).expanduser().resolve())
    if cfg.space.ground_truth is not None and not is_shipped(cfg.space.ground_truth):
        cfg.space.ground_truth = str(Path(cfg.space.ground_truth).expanduser().resolve())
    cfg.out_dir = str(Path(cfg.out_dir).expanduser().resolve())
    return cfg


def evaluation_config(row_config: dict, overrides: list[str]) -> Config:
    """A stored run's config with the overrides an evaluation may apply (everything else defines the run)."""
    fields = set(EvaluationConfig.model_fields)
    expanded = []
    for text in overrides:
        key, _ = parse_override(text)
        if key in fields:  # shorthand: bn=running means evaluation.bn=running
            text, key = f"evaluation.{text}", f"evaluation.{key}"
        changes_training = key in {f"evaluation.{k}" for k in RUN_IDENTITY_EVAL_KEYS}
        allowed = ("evaluation.", "runtime.", "logging.", "device", "progress", "data.root", "data.cache_dir")
        if changes_training or not key.startswith(allowed):
            raise SupernetError(
                f"'{key}' cannot change at evaluation (it defines the run); allowed: evaluation.* except "
                f"{', '.join(RUN_IDENTITY_EVAL_KEYS)} (short form e.g. bn=running), runtime.*, device, data.root, "
                "data.cache_dir"
            )
        expanded.append(text)
    return build_config(row_config, expanded)
