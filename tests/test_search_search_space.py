"""The search space syntax (dlexp.search.search_space) and the hparams_search presets' spaces."""

from __future__ import annotations

import optuna
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dlexp.search.search_space import override_text, parse_space, probe_values


def test_the_search_space_syntax():
    space = parse_space(
        {
            "optim.lr": "tag(log, interval(1e-4, 1e-2))",
            "model.n_hidden": "choice([512],[512,256])",
            "seed": "range(1, 8, 3)",
            "batch_size": "choice(64,128)",
        },
        ["batch_size=32", "model.dropout=interval(0.0, 0.5)", "max_steps=10"],
    )
    d = space.distributions
    assert d["optim.lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert d["model.n_hidden"].choices == ("[512]", "[512,256]")
    assert d["seed"] == optuna.distributions.IntDistribution(1, 7, step=3)  # 1, 4, 7
    assert d["model.dropout"] == optuna.distributions.FloatDistribution(0.0, 0.5)
    assert space.fixed == ["batch_size=32", "max_steps=10"]  # the command line wins
    assert override_text("model.n_hidden", "[512,256]") == "model.n_hidden=[512,256]"
    assert override_text("optim.lr", 1e-05) == "optim.lr=1e-05"


@pytest.mark.parametrize("preset", ["numpy_mlp", "torch_mlp", "convnet"])
def test_each_hparams_search_preset_composes_at_every_choice_and_end(preset):
    with initialize_config_module("dlexp.conf", version_base="1.3"):
        cfg = compose("train", [f"hparams_search={preset}"], return_hydra_config=True)
        assert cfg.model.name == preset
        assert cfg.hydra.sweeper._target_ == "hydra_plugins.dlexp_sweepers.DlexpOptunaSweeper"
        assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
        space = parse_space(OmegaConf.to_container(cfg.hydra.sweeper.params), [])
        assert len(space.distributions) >= 3
        probes = {key: probe_values(d) for key, d in space.distributions.items()}
        for i in range(max(len(values) for values in probes.values())):  # as the sweeper does
            probe = [override_text(k, values[i % len(values)]) for k, values in probes.items()]
            compose("train", [f"hparams_search={preset}", *probe])
