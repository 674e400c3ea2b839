"""The checkpoint file (dlexp.run.checkpoint_file): bit-exact resume on every backend, and one
clean line for every bad file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from dlexp.run.checkpoint_file import (
    CheckpointError,
    backend_state,
    flatten_state,
    load_checkpoint,
    load_run_state,
    save_checkpoint,
    save_run_state,
    unflatten_state,
)
from tests.conftest import assert_one_clean_line, compose_train
from tests.runs import WritesAMarker, build_run

STEP_SCHED = ["sched=step", "sched.step_size=5", "sched.gamma=0.5"]
TORCH = ["device=cpu", "deterministic=true"]
RUNS = {  # name: (overrides, total steps, checkpoint step); 250 images / 50 = 5 steps an epoch
    "numpy-sgd-nesterov": (
        ["optim.lr=0.01", "optim.momentum=0.9", "optim.nesterov=true",
         "optim.weight_decay=0.001", *STEP_SCHED], 16, 7,
    ),
    "numpy-adam": (["optim=adam", "optim.lr=0.001", *STEP_SCHED], 16, 7),
    "torch-mlp-bn-dropout-adam": (
        ["model=torch_mlp", "norm=torch_bn", "model.dropout=0.3", "optim=adam", *STEP_SCHED,
         *TORCH], 16, 7,
    ),
    "torch-mlp-bn-dropout-sgd": (
        ["model=torch_mlp", "norm=torch_bn", "model.dropout=0.3", "optim.momentum=0.9",
         *STEP_SCHED, *TORCH], 16, 7,
    ),
    "convnet-custom-bn": (  # 24 images / 8 = 3 steps an epoch
        ["model=convnet", "norm=custom_bn", "batch_size=8", "data.train_subset=24",
         "sched=step", "sched.step_size=2", "sched.gamma=0.5", *TORCH], 5, 2,
    ),
}  # fmt: skip
LOG_EVERY = 4  # pops straddle the checkpoint: the pending train stats must be saved too


@pytest.fixture(autouse=True)
def nondeterministic_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def compose(tiny_cifar, overrides, seed=1):
    base = [f"data.root={tiny_cifar}", "data.validation_size=50", "batch_size=50",
            "data.cache=false", "progress=false", "output_dir=unused"]  # fmt: skip
    return compose_train([*base, *overrides, f"seed={seed}"])


def build(cfg):
    """A run's backend and sampler as train() builds them, from the seed's generators."""
    backend, sampler, _ = build_run(cfg)
    return backend, sampler


def train(backend, sampler, first: int, last: int) -> list[tuple[float, float]]:
    """Steps first..last; the train stats popped every LOG_EVERY steps."""
    stats = []
    for step in range(first, last + 1):
        backend.train_step(sampler.next_batch())
        if step % LOG_EVERY == 0:
            stats.append(backend.pop_train_stats())
    return stats


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a.dtype == b.dtype and np.array_equal(a, b)


def assert_same_state(reference, resumed) -> None:
    (ref_arrays, ref_meta), (arrays, meta) = reference, resumed
    assert meta == ref_meta  # lr, steps, schedule, sampler position, every RNG
    assert list(arrays) == list(ref_arrays)
    for key, value in ref_arrays.items():
        assert same(arrays[key], value), key


@pytest.mark.parametrize("run", RUNS)
def test_resume_is_bit_exact(tiny_cifar, tmp_path, run):
    overrides, steps, at = RUNS[run]
    backend, sampler = build(compose(tiny_cifar, overrides))
    ref_stats = train(backend, sampler, 1, steps)
    reference = backend_state(backend, sampler)
    ref_eval = backend.evaluate("val")

    backend, sampler = build(compose(tiny_cifar, overrides))
    stats = train(backend, sampler, 1, at)
    save_run_state(tmp_path / "last.ckpt", backend, sampler, loop={"step": at})

    backend, sampler = build(compose(tiny_cifar, overrides, seed=99))  # restore overwrites all
    meta = load_run_state(tmp_path / "last.ckpt", backend, sampler)
    assert meta["loop"] == {"step": at}
    stats += train(backend, sampler, at + 1, steps)
    assert stats == ref_stats
    assert sampler.epochs_completed >= 1
    assert_same_state(reference, backend_state(backend, sampler))
    assert backend.evaluate("val") == ref_eval


def test_state_tree_round_trips_what_json_cannot():
    state = {
        "pcg": np.random.default_rng(3).bit_generator.state,  # 128-bit ints
        "optim": {0: {"step": torch.tensor(3.0)}, 1: {"buf": None}},  # torch's int keys
        "betas": (0.9, 0.999),
        "scalar": np.float32(0.1),
        "flags": [True, 2, -(2**70), "x"],
    }
    arrays, tree = flatten_state(state)
    restored = unflatten_state(json.loads(json.dumps(tree)), arrays)
    assert restored["pcg"] == state["pcg"] and restored["betas"] == (0.9, 0.999)
    assert restored["scalar"].dtype == np.float32 and restored["flags"] == state["flags"]
    assert set(restored["optim"]) == {0, 1} and restored["optim"][1] == {"buf": None}


@pytest.fixture
def numpy_file(tmp_path):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"w": np.arange(1000.0)}, {"backend": "numpy", "step": 3})
    return path


def forge(path, payload: bytes, backend: str) -> None:
    """A file with a valid header and checksum around any payload, as an attacker could write."""
    meta = json.dumps({"backend": backend, "shapes": {"w": [1]}}).encode()
    digest = hashlib.sha256(meta + payload).hexdigest()
    path.write_bytes(f"dlexp-checkpoint 1 {digest} {len(meta)} {len(payload)}\n".encode()
                     + meta + payload)  # fmt: skip


def test_numpy_file_round_trips(numpy_file):
    arrays, meta = load_checkpoint(numpy_file, backend="numpy")
    assert np.array_equal(arrays["w"], np.arange(1000.0)) and meta["step"] == 3
    assert meta["shapes"] == {"w": [1000]} and meta["format_version"] == 1
    assert not list(numpy_file.parent.glob(".*tmp"))


def refused(path, match: str, backend=None) -> None:
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(path, backend=backend)
    assert str(path) in str(err.value)
    assert_one_clean_line(err.value)


def test_missing_file(tmp_path):
    refused(tmp_path / "nope.ckpt", "no such file")


@pytest.mark.parametrize("keep", [0, 10, 60, 400, -1])
def test_truncated_file(numpy_file, keep):
    data = numpy_file.read_bytes()
    numpy_file.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    refused(numpy_file, "truncated")


@pytest.mark.parametrize("where", [-5, 200])  # in the payload, in the metadata
def test_flipped_byte_fails_the_checksum(numpy_file, where):
    data = bytearray(numpy_file.read_bytes())
    data[where] ^= 0x01
    numpy_file.write_bytes(bytes(data))
    refused(numpy_file, "checksum mismatch")


def test_foreign_files_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    torch.save({"w": torch.ones(3)}, tmp_path / "plain.pt")
    for name in ("plain.npz", "plain.pt"):
        refused(tmp_path / name, "not a dlexp checkpoint")


def test_a_pickle_that_runs_code_never_runs(tmp_path):
    control, marker = tmp_path / "control", tmp_path / "marker"
    pickle.loads(pickle.dumps(WritesAMarker(control)))
    assert control.exists()  # the payload really runs code when unpickled

    path = tmp_path / "last.ckpt"
    path.write_bytes(pickle.dumps(WritesAMarker(marker)))  # a bare pickle named as a checkpoint
    refused(path, "not a dlexp checkpoint")

    torch.save({"w": WritesAMarker(marker)}, tmp_path / "evil.pt")  # a torch zip, evil pickle
    forge(path, (tmp_path / "evil.pt").read_bytes(), "torch")
    refused(path, "unreadable payload")

    np.savez(tmp_path / "evil.npz", w=np.array([WritesAMarker(marker)], dtype=object))
    forge(path, (tmp_path / "evil.npz").read_bytes(), "numpy")
    refused(path, "unreadable payload")
    assert not marker.exists()


def test_other_backend_is_refused(tmp_path):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"w": torch.ones(2)}, {"backend": "torch"})
    refused(path, "a torch checkpoint; this run uses numpy", backend="numpy")


def test_numpy_path_never_imports_torch(numpy_file, tmp_path):
    torch_file = tmp_path / "torch.ckpt"
    save_checkpoint(torch_file, {"w": torch.ones(2)}, {"backend": "torch"})
    code = (
        "import sys\nfrom dlexp.run.checkpoint_file import *\nimport numpy as np\n"
        f"save_checkpoint({str(tmp_path / 'n.ckpt')!r}, {{'w': np.ones(3)}},"
        " {'backend': 'numpy'})\n"
        f"load_checkpoint({str(numpy_file)!r}, backend='numpy')\n"
        f"try: load_checkpoint({str(torch_file)!r}, backend='numpy')\n"
        "except CheckpointError: pass\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("other", "key"),
    [
        (["model.n_hidden=[64]"], "backend/model/linears.0.weight"),
        (["model=torch_mlp", "device=cpu"], "a numpy checkpoint; this run uses torch"),
        (["batch_size=25"], "sampler batch_size was 50, is 25"),
    ],
)
def test_another_runs_checkpoint_is_refused(tiny_cifar, tmp_path, other, key):
    path = tmp_path / "last.ckpt"
    save_run_state(path, *build(compose(tiny_cifar, [])))
    with pytest.raises(CheckpointError, match=key) as err:
        load_run_state(path, *build(compose(tiny_cifar, other)))
    assert str(path) in str(err.value)
    assert_one_clean_line(err.value)


def test_a_failed_save_leaves_the_old_file_and_no_temp(numpy_file, monkeypatch):
    before = numpy_file.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(numpy_file, {"w": np.zeros(5)}, {"backend": "numpy"})
    assert numpy_file.read_bytes() == before
    assert [p.name for p in numpy_file.parent.iterdir()] == [numpy_file.name]
