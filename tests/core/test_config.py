"""Config: presets are valid, TOML and --set override in order, bad input names the key."""

import pytest

from core.config import PRESETS, SEED_SCHEDULE, Config, from_dict, key_help, resolve
from core.errors import ConfigError


def test_defaults_follow_the_seed_protocol():
    cfg = Config()
    assert cfg.hidden == (400, 400, 400, 16) and cfg.layer_sizes == (10, 400, 400, 400, 16, 7)
    assert cfg.batch == 128 and cfg.learning_rate == 5e-4 and cfg.init_std == 0.2
    assert cfg.splits == (0.64, 0.16, 0.20) and cfg.schedule == SEED_SCHEDULE
    assert cfg.early_stop_window == 500 and cfg.early_stop_every == 100 and cfg.early_stop_ratio == 1.01
    assert cfg.sparsities[0] == 0.0 and cfg.levels == 1 + len(SEED_SCHEDULE)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_resolves(name):
    cfg = resolve(name)
    assert cfg.to_dict()["nets"] == cfg.nets
    assert from_dict(cfg.to_dict()) == cfg  # what a run stores reads back the same


def test_toml_then_set_override_in_that_order(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[config]\nnets = 6\nhidden = [32, 16]\npruning = "global"\n')
    cfg = resolve("smoke", toml, ["nets=10", "schedule=[0.5, 0.9]", "prune_biases=true", "samples=2_000"])
    assert (cfg.nets, cfg.hidden, cfg.pruning, cfg.schedule) == (10, (32, 16), "global", (0.5, 0.9))
    assert cfg.prune_biases is True and cfg.samples == 2000
    assert cfg.bias_sparsities == (0.0, 0.5, 0.9)


@pytest.mark.parametrize("overrides, key", [
    (["nets=0"], "nets"), (["nets=two"], "nets"), (["hidden=[16, 0]"], "hidden"),
    (["schedule=[0.9, 0.5]"], "schedule"), (["schedule=[1.5]"], "schedule"), (["pruning=random"], "pruning"),
    (["learning_rate=2"], "learning_rate"), (["bogus=1"], "bogus"), (["precision=fp8"], "precision"),
    (["bias_schedule=[0.1]", "schedule=[0.2, 0.3]"], "bias_schedule"), (["batch=100000"], "batch"),
    (["prune_biases=maybe"], "prune_biases"), (["keep_per_output=-1"], "keep_per_output"),
    (["keep_per_output=17"], "keep_per_output"),
    (["max_layer_sparsity=[1, 0.8]"], "max_layer_sparsity"), (["max_layer_sparsity=[1, 1, 1.2]"], "max_layer_sparsity"),
    (["hidden=[16]", "prune_first_layer=false", "prune_output_layer=false"], "prune_output_layer"),
    (["prune_first_layer=sometimes"], "prune_first_layer"),
])
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=f"'{key}'") as raised:
        resolve("smoke", None, overrides)
    assert raised.value.key == key  # the new-run form reads the key here, not in the text


def test_missing_or_broken_files_and_presets(tmp_path):
    with pytest.raises(ConfigError, match="not found") as raised:
        resolve("smoke", tmp_path / "none.toml")
    assert raised.value.key is None  # about no single key
    bad = tmp_path / "bad.toml"
    bad.write_text("nets = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve("smoke", bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("huge")
    with pytest.raises(ConfigError, match="key=value"):
        resolve("smoke", None, ["nets"])


def test_every_key_is_documented():
    for name in Config.__dataclass_fields__:
        assert key_help(name), name


def test_per_layer_keys_name_the_layers_pruned_and_their_caps():
    """smoke is 10-16-16-7: three weight layers, first to output."""
    cfg = resolve("smoke", None, ["prune_first_layer=false", "prune_output_layer=false"])
    assert cfg.pruned_layers == (False, True, False) and cfg.layer_caps == (1.0, 1.0, 1.0)
    cfg = resolve("smoke", None, ["prune_output_layer=false", "max_layer_sparsity=[1, 0.9, 0.8]"])
    assert cfg.pruned_layers == (True, True, False) and cfg.layer_caps == (1.0, 0.9, 0.8)
    assert resolve("smoke").pruned_layers == (True, True, True)
