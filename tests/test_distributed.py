"""Data-parallel training's parts that need no second process: what is refused, in one line;
how a global batch and an evaluation split divide among the ranks; what a SLURM task and a
resumed run are given. The runs on two ranks are in test_distributed_runs.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dlexp.backends.torch_ranks import rank_slice, rng_for_rank
from dlexp.build import build_parts, seed_generators
from dlexp.data.augment import draw_augment
from dlexp.distributed.collectives import shard
from dlexp.distributed.process_group import (
    Ranks,
    distributed_arguments,
    first_host,
    resolve_backend,
    slurm_environment,
)
from dlexp.errors import ConfigError
from tests.conftest import compose_train
from tests.runs import assert_refused, tiny_command

TWO = Ranks(0, 2, 0, 2)  # what the self-launching form plans before it starts two ranks

REFUSED = {  # (overrides, ranks, the whole line)
    "the NumPy backend": (
        ["distributed.nproc_per_node=2"], TWO,
        "numpy_mlp is a NumPy model and trains in one process; data-parallel training "
        "(2 ranks) is for torch models"),
    "a batch that does not split": (
        ["model=torch_mlp", "batch_size=25"], TWO,
        "batch_size 25 (the global batch) does not split evenly among 2 ranks: use a "
        "multiple of 2"),
    "compile under DDP": (
        ["model=torch_mlp", "compile=true"], TWO,
        "compile=true is not supported in data-parallel training (2 ranks); use compile=false"),
    "SyncBatchNorm on the CPU": (
        ["model=torch_mlp", "norm=torch_bn", "norm.sync=true", "device=cpu"], TWO,
        "norm=torch_bn norm.sync=true is nn.SyncBatchNorm, which synchronises on CUDA only "
        "(this run is on cpu); use norm=custom_bn or norm=autograd_bn with norm.sync=true"),
    "NCCL on the CPU": (
        ["model=torch_mlp", "distributed.backend=nccl", "device=cpu"], TWO,
        "distributed.backend=nccl reduces GPU tensors; this run is on cpu: use "
        "distributed.backend=auto or gloo"),
    "no ranks": (["distributed.nproc_per_node=0"], None,
                 "distributed.nproc_per_node must be >= 1, got 0"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_what_does_not_fit_several_ranks_is_refused_in_one_line(case):
    overrides, ranks, line = REFUSED[case]
    cfg = compose_train(overrides)
    with pytest.raises(ConfigError) as refused:
        build_parts(cfg, seed_generators(cfg.seed)[0], ranks)
    assert str(refused.value) == line


def test_sync_batch_norm_in_one_process_on_the_cpu_is_plain_batch_norm():
    """nn.SyncBatchNorm without a process group normalises as nn.BatchNorm2d, so a run trained on
    GPUs with norm=torch_bn norm.sync=true still loads and runs on the CPU (Run.model())."""
    cfg = compose_train(["model=convnet", "norm=torch_bn", "norm.sync=true", "device=cpu"])
    model = build_parts(cfg, seed_generators(cfg.seed)[0]).model
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    x = torch.randn(4, 3, 32, 32)
    assert model(x).shape == (4, 10) and model.eval()(x).shape == (4, 10)


def test_cuda_with_fewer_gpus_than_ranks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cfg = compose_train(["model=torch_mlp", "device=cuda"])
    with pytest.raises(ConfigError, match=r"^2 ranks on this machine need 2 GPUs"):
        build_parts(cfg, seed_generators(cfg.seed)[0], TWO)


def test_the_command_refuses_before_any_rank_starts(tiny_cifar, tmp_path):
    import subprocess

    run = tmp_path / "run"
    args = tiny_command(tiny_cifar, run, "distributed.nproc_per_node=2")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert_refused(
        proc,
        "dlexp-train: error: numpy_mlp is a NumPy model and trains in one process; "
        "data-parallel training (2 ranks) is for torch models",
        run,
    )


def test_the_backend_is_nccl_on_cuda_and_gloo_elsewhere():
    assert resolve_backend("auto", "cuda") == "nccl"
    assert resolve_backend("auto", "cpu") == resolve_backend("gloo", "cuda") == "gloo"
    with pytest.raises(ConfigError, match="must be one of auto, gloo, nccl, got 'mpi'"):
        distributed_arguments(backend="mpi")


def test_each_rank_takes_its_slice_of_the_global_batch_and_its_draws():
    indices = torch.arange(100, 112)
    drawn = draw_augment(np.random.default_rng(0), 12, "flip_crop")
    parts = [rank_slice(indices, drawn, Ranks(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), indices)  # in order, each once
    for field in ("flip", "dy", "dx"):
        joined = np.concatenate([getattr(p[1], field) for p in parts])
        np.testing.assert_array_equal(joined, getattr(drawn, field))


@pytest.mark.parametrize(("total", "world"), [(10, 2), (10_000, 3), (5, 4), (1, 2)])
def test_evaluation_shards_count_every_image_once(total, world):
    shards = [shard(rank, world, total) for rank in range(world)]
    assert shards[0][0] == 0 and shards[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(shards))


def test_a_rank_resumes_its_own_rng_only_on_the_same_world_size():
    state = {"rng": "rank 0's", "rank_rng": ["rank 0's", "rank 1's"]}
    assert rng_for_rank(state, Ranks(1, 2)) == "rank 1's"
    assert rng_for_rank(state, Ranks(0, 3)) == "rank 0's"
    assert rng_for_rank(state, Ranks(2, 3)) is None  # keeps its seeded stream
    assert rng_for_rank({"rng": "one process's"}, Ranks(1, 2)) is None


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [("gpu[03-04,07]", "gpu03"), ("node1,node2", "node1"), ("a-b[1,3],c", "a-b1"), ("x", "x")],
)
def test_the_master_is_the_first_node_of_the_slurm_job(nodelist, host):
    assert first_host(nodelist) == host


def test_a_slurm_task_gets_torchruns_variables():
    task = {  # task 5 of a 2-node job with 4 tasks (GPUs) per node
        "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
        "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[12-13]", "SLURM_JOB_ID": "4321",
    }  # fmt: skip
    assert slurm_environment(task) == {
        "MASTER_ADDR": "gpu12", "MASTER_PORT": str(20000 + 4321), "RANK": "5",
        "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
    }  # fmt: skip
    assert slurm_environment({**task, "SLURM_NTASKS": "1"}) is None  # one task: one process
    assert slurm_environment({**task, "RANK": "0"}) is None  # under torchrun already
    del task["SLURM_PROCID"]
    assert slurm_environment(task) is None  # a shell in an allocation, not a task
