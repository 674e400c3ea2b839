"""One rank in a process group: the torch backend's data-parallel path (DistributedDataParallel,
the sums and predictions gathered, every rank's RNG, the stop flag) trains and evaluates as one
process does. On the CPU with gloo; on CUDA with NCCL (gpu marker: a lent machine has one GPU,
so nothing here is measured on more than one)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from dlexp.build import augment_generator, build_parts, load_run_data, make_backend, seed_generators
from dlexp.data import BatchSampler
from dlexp.distributed.collectives import max_over_ranks
from dlexp.distributed.process_group import Ranks

STEPS = 6
CONVNET = ["model=convnet", "batch_size=8", "eval_batch_size=50"]
MLP = ["model=torch_mlp", "model.dropout=0.3"]  # rank 0 keeps one process's dropout stream
CASES = [  # (device, norm, model); torch_bn is nn.SyncBatchNorm, CUDA only
    pytest.param("cpu", "custom_bn", MLP, id="gloo-mlp"),
    pytest.param("cuda", "custom_bn", CONVNET, id="nccl-convnet", marks=pytest.mark.gpu),
    pytest.param("cuda", "torch_bn", CONVNET, id="nccl-convnet-torch_bn", marks=pytest.mark.gpu),
]


@pytest.fixture
def one_rank_group(tmp_path, device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    backend = "cpu:gloo,cuda:nccl" if device == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)  # fmt: skip
    yield
    dist.destroy_process_group()


def trained(cfg, ranks: Ranks | None):
    """(backend, train stats, val metrics) after STEPS steps, as train(cfg) would build it."""
    model_rng, sampler_rng = seed_generators(cfg.seed)
    parts = build_parts(cfg, model_rng, ranks)
    data = load_run_data(cfg)
    backend = make_backend(parts, data, cfg, augment_generator(cfg.seed))
    sampler = BatchSampler(len(data.train), cfg.batch_size, sampler_rng)
    for _ in range(STEPS):
        backend.train_step(sampler.next_batch())
    return backend, backend.pop_train_stats(), backend.evaluate("val")


@pytest.mark.parametrize(("device", "norm", "model"), CASES)
def test_one_rank_trains_and_evaluates_as_one_process(
    tiny_cfg, one_rank_group, device, norm, model
):
    cfg = tiny_cfg(*model, f"norm={norm}", "norm.sync=true", f"device={device}",
                   "precision=fp32", "deterministic=true", "data.augment=flip_crop")  # fmt: skip
    alone, alone_stats, alone_val = trained(cfg, None)
    ranked, stats, val = trained(cfg, Ranks(0, 1, 0, 1))
    if device == "cuda":
        assert ranked.ranks.backend == "nccl" and ranked.device == torch.device("cuda", 0)
    assert stats == pytest.approx(alone_stats, rel=1e-5)
    assert val == pytest.approx(alone_val, rel=1e-5)
    for (name, p), q in zip(ranked.model.named_parameters(), alone.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    state = ranked.state_dict()
    assert len(state["rank_rng"]) == 1
    assert all(torch.equal(state["rank_rng"][0][k], v) for k, v in state["rng"].items())
    assert max_over_ranks(15) == 15  # the stop flag: a CPU tensor, through gloo
