from pathlib import Path

import pytest

from supernet.config import VALID_KEYS, build_config, load_config
from supernet.errors import SupernetError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_recipe_holds_the_papers_nb201_protocol():
    cfg = load_config(RECIPES / "nb201.yaml")
    s, p = cfg.supernet, cfg.protocol
    assert (s.channels, s.layers, s.bn_affine) == (16, 5, True)
    assert (p.batch_size, p.lr, p.weight_decay, p.momentum, p.grad_clip, p.lr_min) == (256, 0.025, 5e-4, 0.9, 5.0, 0.001)
    assert cfg.data.train_portion == 0.5 and cfg.evaluation.bn == "batch" and cfg.evaluation.pool_size == 200


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml") if not p.name.startswith("retrain-")))
def test_every_recipe_loads(recipe):
    load_config(RECIPES / recipe)  # retrain-*.yaml: final protocols for a space, loaded in test_retrain.py


def test_overrides_are_typed():
    cfg = build_config({}, ["protocol.epochs=3", "protocol.lr=0.1", "supernet.op_placement=edge", "data.root=/x"])
    assert cfg.protocol.epochs == 3 and cfg.protocol.lr == 0.1 and cfg.supernet.op_placement == "edge"
    assert cfg.data.root == "/x"


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(SupernetError, match="unknown config key 'protocol.epoch'; did you mean 'protocol.epochs'"):
        build_config({}, ["protocol.epoch=3"])
    with pytest.raises(SupernetError, match="did you mean 'protocol.weight_decay'"):
        build_config({}, ["weight_decay=1e-4"])
    with pytest.raises(SupernetError, match="unknown config key 'protocl.lr'"):
        build_config({"protocl": {"lr": 0.1}})


def test_bad_value_names_the_allowed_ones():
    with pytest.raises(SupernetError, match=r"evaluation.bn.*'batch', 'running' or 'recalibrate'"):
        build_config({}, ["evaluation.bn=tracked"])
    with pytest.raises(SupernetError, match="protocol.epochs"):
        build_config({}, ["protocol.epochs=-1"])
    with pytest.raises(SupernetError, match="key=value"):
        build_config({}, ["protocol.epochs"])


def test_run_id_is_stable_and_ignores_evaluation_only_settings():
    a = build_config({}, ["seed=1", "supernet.bn_track_stats=true"])
    assert a.run_id() == build_config(
        {}, ["seed=1", "supernet.bn_track_stats=true", "evaluation.max_images=512", "progress=false"]
    ).run_id()
    # The headline BN mode is a level of the bn factor: it must not share the recipe's run and metrics.
    assert a.run_id() != build_config({}, ["seed=1", "supernet.bn_track_stats=true", "evaluation.bn=running"]).run_id()
    assert a.run_id() != build_config({}, ["seed=2", "supernet.bn_track_stats=true"]).run_id()
    assert a.run_id() != build_config({}, ["seed=1", "supernet.bn_track_stats=true", "protocol.lr=0.1"]).run_id()


def test_cross_field_rules_fail_before_training():
    for overrides, message in (
        (["evaluation.bn=running"], "bn_track_stats=true"),
        (["evaluation.top_k=300"], "exceeds evaluation.pool_size"),
        (["protocol.lr_min=0.5"], "exceeds protocol.lr"),
        (["space.name=nasbench101", "supernet.op_placement=edge"], "NASBench-201 / DARTS-NDS option"),
        (["name=../../escape"], "name"),
        (["seed=18446744073709551616"], "seed"),
    ):
        with pytest.raises(SupernetError, match=message):
            build_config({}, overrides)


def test_text_keys_keep_the_raw_string():
    cfg = build_config({}, ["name=2024", "data.root=0123"])
    assert cfg.name == "2024" and cfg.data.root == "0123"


def test_missing_or_invalid_recipe(tmp_path):
    with pytest.raises(SupernetError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("protocol: [1, 2")
    with pytest.raises(SupernetError, match="not valid YAML"):
        load_config(bad)


def test_valid_keys_cover_every_section():
    assert {k.split(".")[0] for k in VALID_KEYS if "." in k} == {"space", "supernet", "protocol", "evaluation", "data", "runtime",
                                                                  "logging", "final"}


def _float_keys() -> list[str]:
    cfg = build_config({})
    return [k for k in VALID_KEYS if isinstance(cfg.value(k), float)]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", ".inf", ".nan"])
def test_every_float_key_must_be_finite(value):
    keys = _float_keys()
    assert {"protocol.lr", "protocol.grad_clip", "evaluation.skdt_threshold", "data.train_portion"} <= set(keys)
    for key in keys:
        with pytest.raises(SupernetError, match=f"'{key}'.*finite number"):
            build_config({}, [f"{key}={value}"])


def test_network_size_has_a_documented_maximum():
    from supernet.config import MAX_CHANNELS, MAX_LAYERS

    assert build_config({}, [f"supernet.layers={MAX_LAYERS}", f"supernet.channels={MAX_CHANNELS}"])
    with pytest.raises(SupernetError, match=f"'supernet.layers': 100000: .*less than or equal to {MAX_LAYERS}"):
        build_config({}, ["supernet.layers=100000"])
    with pytest.raises(SupernetError, match=f"less than or equal to {MAX_CHANNELS}"):
        build_config({}, [f"supernet.channels={MAX_CHANNELS + 1}"])


def test_recipe_text_is_checked(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_bytes(b"seed: 1\n\xff\xfe\n")
    with pytest.raises(SupernetError, match=r"not UTF-8 text \(line 2, byte 8"):
        load_config(bad)
    bad.write_text("")
    with pytest.raises(SupernetError, match="is empty"):
        load_config(bad)
    bad.write_text("seed: 1\nprotocol:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(SupernetError, match="key 'lr' appears twice in one mapping \\(lines 3 and 4\\)"):
        load_config(bad)
    bad.write_text("protocol:\n  lr: 0.1\nevaluation:\n  lr: 0.1\n")  # the same name in two mappings is fine
    with pytest.raises(SupernetError, match="unknown config key 'evaluation.lr'"):
        load_config(bad)
    bad.write_text("a: " + "[" * 5000)
    with pytest.raises(SupernetError, match="is not valid YAML|nested too deeply"):
        load_config(bad)
