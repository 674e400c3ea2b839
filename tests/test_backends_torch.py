"""The torch backend: compile=true and channels_last=true train as eager and keep the same state;
precision=auto; the inductor cache.

dlexp.backends.torch_backend is imported inside the tests: at import it points inductor's cache
at $DLEXP_CACHE, which conftest sets to a temporary folder only once the session starts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def mapped_file(address: int) -> str | None:
    """The file whose mapping in this process holds `address` (Linux /proc/self/maps)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        start, stop = (int(bound, 16) for bound in fields[0].split("-"))
        if start <= address < stop:
            return fields[5] if len(fields) == 6 else None
    return None


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads Linux's /proc/self/maps")
def test_cpu_splits_share_the_cached_files_pages_and_keep_only_the_subsets(tiny_cfg):
    from dlexp.build import load_run_data

    load_run_data(tiny_cfg())  # the first full run writes the prepared cache
    cfg = tiny_cfg(*mlp_overrides("data.train_subset=60", "data.eval_subset=30"))
    backend, sampler = make_backend_for(cfg)
    data = load_run_data(cfg)
    for name in ("train", "val", "test"):
        images = backend.splits[name][0]
        assert torch.equal(images, torch.from_numpy(getattr(data, name).images.copy()))
        assert len(images) == (60 if name == "train" else 30)
        # the tensor's bytes are the cache file's pages (mapped copy-on-write), not a copy
        assert mapped_file(images.data_ptr()) == str(Path(getattr(data, name).images.filename))
    before = data.train.images[0].copy()
    backend.splits["train"][0][0] += 1.0  # a write stays private to the tensor
    np.testing.assert_array_equal(load_run_data(cfg).train.images[0], before)
    assert losses(backend, sampler, 2)[0] > 0  # and it trains
