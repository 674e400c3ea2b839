"""The checkpoint file (dlexp.run.checkpoint_file): a safetensors file any reader opens,
bit-exact resume on every backend from it and from the format before (`.ckpt`), and one clean
line for every bad file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy
import torch
from safetensors import safe_open

from dlexp.run.checkpoint_file import (
    CheckpointError,
    backend_state,
    load_checkpoint,
    load_run_state,
    save_checkpoint,
    save_run_state,
)
from dlexp.run.state_tree import flatten_state, unflatten_state
from tests.conftest import assert_one_clean_line, compose_train
from tests.runs import WritesAMarker, build_run, write_old_checkpoint

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


def save_old_run_state(path, backend, sampler, loop: dict) -> None:
    """save_run_state() as dlexp wrote it before safetensors."""
    arrays, meta = backend_state(backend, sampler)
    write_old_checkpoint(path, arrays, {**meta, "loop": loop})


@pytest.mark.parametrize("file", ["last.safetensors", "last.ckpt"])  # today's format, the old
@pytest.mark.parametrize("run", RUNS)
def test_resume_is_bit_exact(tiny_cifar, tmp_path, run, file):
    overrides, steps, at = RUNS[run]
    backend, sampler = build(compose(tiny_cifar, overrides))
    ref_stats = train(backend, sampler, 1, steps)
    reference = backend_state(backend, sampler)
    ref_eval = backend.evaluate("val")

    backend, sampler = build(compose(tiny_cifar, overrides))
    stats = train(backend, sampler, 1, at)
    save = save_run_state if file.endswith(".safetensors") else save_old_run_state
    save(tmp_path / file, backend, sampler, loop={"step": at})

    backend, sampler = build(compose(tiny_cifar, overrides, seed=99))  # restore overwrites all
    meta = load_run_state(tmp_path / file, backend, sampler)
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


@pytest.mark.parametrize("run", ["numpy-adam", "torch-mlp-bn-dropout-adam"])
def test_any_safetensors_reader_opens_a_checkpoint(tiny_cifar, tmp_path, run):
    """The arrays equal the model's state; the rest is JSON in the metadata, checksummed."""
    overrides, _, at = RUNS[run]
    backend, sampler = build(compose(tiny_cifar, overrides))
    train(backend, sampler, 1, at)
    path = save_run_state(tmp_path / "last.safetensors", backend, sampler, loop={"step": at})
    with safe_open(path, framework="np") as f:  # NumPy, whichever backend wrote it
        metadata, arrays = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta = json.loads(metadata["meta"])
    assert metadata["format"] == "dlexp-checkpoint" and meta["backend"] == backend.kind
    assert meta["loop"] == {"step": at} and meta["state"]["sampler"]["position"] > 0
    model = backend.state_dict()["model"]
    assert {k.removeprefix("backend/model/") for k in arrays if "/model/" in k} == set(model)
    for key, value in model.items():
        value = value.numpy() if isinstance(value, torch.Tensor) else value
        assert np.array_equal(arrays[f"backend/model/{key}"], value), key
    digest = hashlib.sha256(metadata["meta"].encode())  # the rule the module's docstring gives
    for key in meta["shapes"]:
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    assert digest.hexdigest() == metadata["sha256"]
    if backend.kind == "torch":
        with safe_open(path, framework="pt") as f:
            for key, value in model.items():
                assert torch.equal(f.get_tensor(f"backend/model/{key}"), value), key


def test_torch_files_keep_every_tensor_as_it_was(tmp_path):
    base = torch.arange(6.0).reshape(2, 3)
    arrays = {
        "tied": base, "tied_again": base, "transposed": base.T, "bf16": base.to(torch.bfloat16),
        "scalar": torch.tensor(3), "empty": torch.zeros(0), "flags": torch.tensor([True, False]),
        "numpy": np.arange(4, dtype=np.int32), "numpy_0d": np.asarray(np.float32(0.5)),
    }  # fmt: skip
    save_checkpoint(tmp_path / "t.safetensors", arrays, {"backend": "torch"})
    loaded, _ = load_checkpoint(tmp_path / "t.safetensors", backend="torch")
    assert sorted(loaded) == sorted(arrays)
    for key, value in arrays.items():
        assert type(loaded[key]) is type(value), key
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype and np.array_equal(loaded[key], value), key
        else:
            assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key


@pytest.fixture
def numpy_file(tmp_path):
    path = tmp_path / "last.safetensors"
    arrays = {"w": np.arange(1000.0), "t": np.arange(6.0).reshape(2, 3).T, "s": np.float32(2)}
    save_checkpoint(path, {k: np.asarray(a) for k, a in arrays.items()}, {"backend": "numpy"})
    return path


def test_numpy_file_round_trips(numpy_file):
    arrays, meta = load_checkpoint(numpy_file, backend="numpy")
    assert np.array_equal(arrays["w"], np.arange(1000.0))
    assert np.array_equal(arrays["t"], np.arange(6.0).reshape(2, 3).T)  # stored in C order
    assert arrays["s"].shape == () and arrays["s"].dtype == np.float32 and arrays["s"] == 2
    assert meta["shapes"] == {"w": [1000], "t": [3, 2], "s": []} and meta["format_version"] == 2
    assert not list(numpy_file.parent.glob(".*tmp"))


def refused(path, match: str | None, backend=None) -> None:
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(path, backend=backend)
    assert str(path) in str(err.value)
    assert_one_clean_line(err.value)


def test_missing_file(tmp_path):
    refused(tmp_path / "nope.safetensors", "no such file")


@pytest.mark.parametrize("keep", [0, 4, 8, 9, 60, 400, -1])
def test_truncated_file(numpy_file, keep):
    data = numpy_file.read_bytes()
    numpy_file.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    refused(numpy_file, "truncated")


def test_every_flipped_byte_is_refused_in_one_line(tmp_path):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"w": np.arange(4.0), "b": np.ones(2, np.float32)}, {"backend": "numpy"})
    good = path.read_bytes()
    header_end = 8 + int.from_bytes(good[:8], "little")
    for where in range(len(good)):
        data = bytearray(good)
        data[where] ^= 0x01
        path.write_bytes(bytes(data))
        match = "checksum mismatch" if where >= header_end else None  # None: any reason
        refused(path, match)


def test_foreign_files_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    torch.save({"w": torch.ones(3)}, tmp_path / "plain.pt")
    safetensors.numpy.save_file({"w": np.ones(3)}, tmp_path / "plain.safetensors")
    (tmp_path / "text.safetensors").write_text("not a checkpoint at all\n" * 3)
    for name in ("plain.npz", "plain.pt", "plain.safetensors", "text.safetensors"):
        refused(tmp_path / name, "not a dlexp checkpoint")


def forge(path, payload: bytes, backend: str) -> None:
    """An old-format file with a valid header and checksum around any payload, as an attacker
    could write."""
    meta = json.dumps({"backend": backend, "shapes": {"w": [1]}}).encode()
    digest = hashlib.sha256(meta + payload).hexdigest()
    path.write_bytes(f"dlexp-checkpoint 1 {digest} {len(meta)} {len(payload)}\n".encode()
                     + meta + payload)  # fmt: skip


def test_a_pickle_that_runs_code_never_runs(tmp_path):
    control, marker = tmp_path / "control", tmp_path / "marker"
    pickle.loads(pickle.dumps(WritesAMarker(control)))
    assert control.exists()  # the payload really runs code when unpickled

    for name in ("last.safetensors", "last.ckpt"):  # a bare pickle named as a checkpoint
        (tmp_path / name).write_bytes(pickle.dumps(WritesAMarker(marker)))
        refused(tmp_path / name, "not a dlexp checkpoint")

    path = tmp_path / "last.ckpt"
    torch.save({"w": WritesAMarker(marker)}, tmp_path / "evil.pt")  # a torch zip, evil pickle
    forge(path, (tmp_path / "evil.pt").read_bytes(), "torch")
    refused(path, "unreadable payload")

    np.savez(tmp_path / "evil.npz", w=np.array([WritesAMarker(marker)], dtype=object))
    forge(path, (tmp_path / "evil.npz").read_bytes(), "numpy")
    refused(path, "unreadable payload")
    assert not marker.exists()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_old_format_files_still_load(tmp_path, backend):
    arrays = {"w": np.arange(6.0).reshape(2, 3), "s": np.asarray(np.float32(2))}
    if backend == "torch":
        arrays["t"] = torch.arange(3.0)
    path = tmp_path / "last.ckpt"
    write_old_checkpoint(path, arrays, {"backend": backend, "loop": {"step": 7}})
    loaded, meta = load_checkpoint(path)
    assert meta["loop"] == {"step": 7} and meta["format_version"] == 1
    assert sorted(loaded) == sorted(arrays)
    for key, value in arrays.items():
        assert type(loaded[key]) is type(value) and (loaded[key] == value).all(), key

    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    refused(path, "checksum mismatch")
    path.write_bytes(bytes(data[:-100]))
    refused(path, "truncated")


def test_other_backend_is_refused(tmp_path):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"backend": "torch"})
    refused(path, "a torch checkpoint; this run uses numpy", backend="numpy")


def test_numpy_path_never_imports_torch(numpy_file, tmp_path):
    torch_file, old_file = tmp_path / "torch.safetensors", tmp_path / "old.ckpt"
    save_checkpoint(torch_file, {"w": torch.ones(2)}, {"backend": "torch"})
    write_old_checkpoint(old_file, {"w": np.ones(2)}, {"backend": "numpy"})
    code = (
        "import sys\nfrom dlexp.run.checkpoint_file import *\nimport numpy as np\n"
        f"save_checkpoint({str(tmp_path / 'n.safetensors')!r}, {{'w': np.ones(3)}},"
        " {'backend': 'numpy'})\n"
        f"load_checkpoint({str(numpy_file)!r}, backend='numpy')\n"
        f"load_checkpoint({str(old_file)!r}, backend='numpy')\n"
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
    path = tmp_path / "last.safetensors"
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
