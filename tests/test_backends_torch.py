"""The torch backend: compile=true and channels_last=true train as eager and keep the same state;
precision=auto; the inductor cache.

dlexp.backends.torch_backend is imported inside the tests: at import it points inductor's cache
at $DLEXP_CACHE, which conftest sets to a temporary folder only once the session starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.runs import build_run

STEPS = 6


def make_backend_for(cfg):
    """The backend and sampler that train(cfg) would build, without the loop."""
    backend, sampler, _ = build_run(cfg)
    return backend, sampler


def losses(backend, sampler, steps: int = STEPS) -> list[float]:
    """The training loss of each step."""
    per_step = []
    for _ in range(steps):
        backend.train_step(sampler.next_batch())
        per_step.append(backend.pop_train_stats()[0])
    return per_step


def mlp_overrides(*extra: str) -> list[str]:
    return ["model=torch_mlp", "norm=torch_bn", "optim=adam", "optim.lr=1e-3", "device=cpu",
            "model.init=default", "data.augment=flip", *extra]  # fmt: skip


@pytest.mark.slow  # ~15 s: torch.compile on the CPU
def test_compiled_mlp_step_follows_the_eager_loss_trajectory(tiny_cfg):
    eager, eager_sampler = make_backend_for(tiny_cfg(*mlp_overrides()))
    compiled, compiled_sampler = make_backend_for(tiny_cfg(*mlp_overrides("compile=true")))
    want = losses(eager, eager_sampler)
    got = losses(compiled, compiled_sampler)
    assert want[-1] < want[0]  # it learns, so the comparison means something
    assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
    assert eager.compile_s == 0.0
    assert compiled.compile_s > 0.0  # the first step compiled


@pytest.mark.slow  # ~20 s: torch.compile on the CPU
def test_compiled_backend_keeps_plain_state_dict_keys(tiny_cfg):
    backend, sampler = make_backend_for(tiny_cfg(*mlp_overrides("compile=true")))
    losses(backend, sampler, steps=2)
    keys = list(backend.state_dict()["model"])
    assert keys and not any("_orig_mod" in key for key in keys)
    fresh, _ = make_backend_for(tiny_cfg(*mlp_overrides("compile=true")))
    fresh.load_state_dict(backend.state_dict())
    for name, (values, _) in fresh.parameter_arrays().items():
        torch.testing.assert_close(values, backend.parameter_arrays()[name][0], rtol=0, atol=0)


def convnet_overrides(*extra: str) -> list[str]:
    return ["model=convnet", "batch_size=8", "eval_batch_size=50", "device=cpu", *extra]


def test_channels_last_convnet_matches_the_contiguous_one(tiny_cfg):
    plain, plain_sampler = make_backend_for(tiny_cfg(*convnet_overrides()))
    nhwc, nhwc_sampler = make_backend_for(tiny_cfg(*convnet_overrides("channels_last=true")))
    conv = nhwc.model.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert nhwc.splits["train"][0].is_contiguous(memory_format=torch.channels_last)
    want, got = losses(plain, plain_sampler, 3), losses(nhwc, nhwc_sampler, 3)
    assert got == pytest.approx(want, rel=1e-3)
    assert nhwc.evaluate("val")["loss"] == pytest.approx(plain.evaluate("val")["loss"], rel=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_convnet_on_cuda_uses_graphs_and_follows_eager(tiny_cfg):
    """reduce-overhead (CUDA graphs), channels_last and auto (bf16) precision together."""
    fast = ("channels_last=true", "precision=auto", "device=cuda")
    eager, eager_sampler = make_backend_for(tiny_cfg(*convnet_overrides(*fast)))
    compiled, sampler = make_backend_for(tiny_cfg(*convnet_overrides(*fast, "compile=true")))
    assert compiled.precision == "bf16"
    want, got = losses(eager, eager_sampler, 8), losses(compiled, sampler, 8)
    assert got == pytest.approx(want, rel=0.05)  # bf16: kernels differ, trajectories stay close
    assert compiled.compile_s > 0.0
    assert not any("_orig_mod" in key for key in compiled.state_dict()["model"])
    assert compiled.evaluate("val")["accuracy"] >= 0.0


@pytest.mark.parametrize(("device", "want"), [("cpu", "fp32"), ("cuda", "bf16"), ("mps", "fp32")])
def test_auto_precision_is_bf16_on_cuda_only(device, want):
    from dlexp.backends.torch_backend import resolve_precision  # after conftest's DLEXP_CACHE

    assert resolve_precision("auto", torch.device(device)) == want
    assert resolve_precision("bf16", torch.device(device)) == "bf16"


def test_inductor_cache_defaults_to_dlexps_cache_folder(monkeypatch, tmp_path):
    from dlexp.backends.torch_backend import use_persistent_inductor_cache

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("DLEXP_CACHE", str(tmp_path))
    assert Path(use_persistent_inductor_cache()) == tmp_path / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert use_persistent_inductor_cache() == str(tmp_path / "mine")  # the user's choice wins
