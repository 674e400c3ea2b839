"""precision=auto, the speed keys' errors, the convnet_fast preset and the inductor cache.

dlexp.backends.torch_backend is imported inside the tests: at import it points inductor's cache
at $DLEXP_CACHE, which conftest sets to a temporary folder only once the session starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dlexp.errors import ConfigError
from dlexp.train import train
from tests.conftest import compose_train

TORCH_PRESETS = ("seed_convnet", "seed_custom_bn", "seed_torch_mlp", "torch_mlp_best",
                 "torch_mlp_tuned", "convnet_fast")  # fmt: skip


@pytest.mark.parametrize(("device", "want"), [("cpu", "fp32"), ("cuda", "bf16"), ("mps", "fp32")])
def test_auto_precision_is_bf16_on_cuda_only(device, want):
    from dlexp.backends.torch_backend import resolve_precision  # after conftest's DLEXP_CACHE

    assert resolve_precision("auto", torch.device(device)) == want
    assert resolve_precision("bf16", torch.device(device)) == "bf16"


def test_unknown_precision_is_one_line(tiny_cfg):
    with pytest.raises(ConfigError) as error:
        train(tiny_cfg("model=torch_mlp", "precision=fp8"))
    assert str(error.value) == "precision must be one of fp32, bf16, auto, got 'fp8'"


def test_auto_precision_trains_in_fp32_on_cpu(tiny_cfg, tmp_path):
    finals = []
    for precision in ("fp32", "auto"):
        out = tmp_path / precision
        train(tiny_cfg("model=torch_mlp", "device=cpu", "max_steps=4", "eval_freq=4",
                       f"precision={precision}", f"output_dir={out}"))  # fmt: skip
        finals.append(json.loads((out / "metrics.json").read_text())["final"])
    assert finals[0] == finals[1]  # auto on the CPU is exactly fp32


@pytest.mark.parametrize("preset", TORCH_PRESETS)
def test_torch_presets_use_auto_precision(preset):
    assert compose_train([f"experiment={preset}"]).precision == "auto"


def test_convnet_fast_preset_has_the_issues_settings():
    cfg = compose_train(["experiment=convnet_fast"])
    assert cfg.model.name == "convnet" and cfg.norm.name == "torch_bn"
    assert (cfg.optim.name, cfg.optim.nesterov) == ("sgd", True) and cfg.optim.momentum > 0
    assert cfg.sched.name == "onecycle" and cfg.label_smoothing == 0.1
    assert cfg.batch_size == 512 and cfg.data.augment == "flip_crop"
    assert cfg.compile and cfg.channels_last and cfg.precision == "auto"
    assert cfg.data.validation_size > 0 and cfg.optimized_metric == "val/accuracy"


def test_convnet_fast_debug_runs_on_tiny_data(tiny_cfg, tmp_path):
    """debug=fast of the preset, eager here (CPU compile of the ConvNet takes minutes; the
    compiled step is tested on the MLP in test_torch_fast_compile.py)."""
    cfg = tiny_cfg("experiment=convnet_fast", "debug=fast", "batch_size=16", "eval_batch_size=50",
                   "compile=false", "device=cpu")  # fmt: skip
    assert 0 <= train(cfg) <= 1
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed"


def test_inductor_cache_defaults_to_dlexps_cache_folder(monkeypatch, tmp_path):
    from dlexp.backends.torch_backend import use_persistent_inductor_cache

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("DLEXP_CACHE", str(tmp_path))
    assert Path(use_persistent_inductor_cache()) == tmp_path / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert use_persistent_inductor_cache() == str(tmp_path / "mine")  # the user's choice wins
