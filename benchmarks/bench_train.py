"""dlexp-train against bare scripts of the same steps on the same data, side by side.

Usage: DLEXP_DATA=... python benchmarks/bench_train.py [--repeats 3] [--part numpy torch_mlp]

- numpy, torch_mlp: the default run (1500 steps, eval every 100) through `dlexp-train` in a
  subprocess, against a bare NumPy / torch script of the same steps and evaluations in another
  subprocess. Both loops are timed from their first step to their end; dlexp's start-up
  (process start to first step) is reported on its own.
- convnet: the ConvNet train step as the loop drives it (dlexp's TorchBackend.train_step)
  against a bare nn.Sequential step of the same layers, same batches, interleaved in one process.

Prints markdown tables with medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_NUMPY = r"""
import sys, time, numpy as np
from dlexp.data import load_cifar10
d = load_cifar10(sys.argv[1])
flat = lambda a: a.reshape(len(a), -1)
xtr, ytr = flat(d.train.images), d.train.labels
evals = [(flat(d.val.images), d.val.labels), (flat(d.test.images), d.test.labels)]
rng = np.random.default_rng(1)
W1 = rng.normal(0, 1e-4, (100, 3072)).astype(np.float32); b1 = np.zeros(100, np.float32)
W2 = rng.normal(0, 1e-4, (10, 100)).astype(np.float32); b2 = np.zeros(10, np.float32)
def logits(x):
    h = x @ W1.T + b1
    a = np.maximum(h, 0.02 * h)
    return h, a, a @ W2.T + b2
t0 = time.perf_counter()
perm, pos = rng.permutation(len(ytr)), 0
for step in range(1, 1501):
    if pos + 200 > len(ytr):
        perm, pos = rng.permutation(len(ytr)), 0
    idx = perm[pos:pos + 200]; pos += 200
    x, y = xtr[idx], ytr[idx]
    h, a, z = logits(x)
    p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(200), y]).mean()
    p[np.arange(200), y] -= 1; p /= 200
    dW2, db2 = p.T @ a, p.sum(0)
    da = p @ W2
    dh = da * np.where(h > 0, 1, 0.02).astype(np.float32)
    dW1, db1 = dh.T @ x, dh.sum(0)
    W1 -= 2e-3 * dW1; b1 -= 2e-3 * db1; W2 -= 2e-3 * dW2; b2 -= 2e-3 * db2
    if step % 100 == 0:
        for xe, ye in evals:
            for s in range(0, len(ye), 1000):
                z = logits(xe[s:s + 1000])[2]
print(time.perf_counter() - t0)
"""

BARE_TORCH_MLP = r"""
import sys, time, numpy as np, torch
from torch import nn
from dlexp.data import load_cifar10
d = load_cifar10(sys.argv[1])
t = lambda s: (torch.from_numpy(s.images), torch.from_numpy(s.labels))
(xtr, ytr), evals = t(d.train), [t(d.val), t(d.test)]
torch.manual_seed(1)
model = nn.Sequential(nn.Flatten(), nn.Linear(3072, 100), nn.LeakyReLU(0.02), nn.Linear(100, 10))
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0, 1e-4); nn.init.zeros_(m.bias)
opt = torch.optim.SGD(model.parameters(), lr=2e-3)
rng = np.random.default_rng(1)
t0 = time.perf_counter()
perm, pos = torch.from_numpy(rng.permutation(len(ytr))), 0
for step in range(1, 1501):
    if pos + 200 > len(ytr):
        perm, pos = torch.from_numpy(rng.permutation(len(ytr))), 0
    idx = perm[pos:pos + 200]; pos += 200
    loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 100 == 0:
        with torch.no_grad():
            for xe, ye in evals:
                for s in range(0, len(ye), 1000):
                    model(xe[s:s + 1000])
print(time.perf_counter() - t0)
"""


def run_dlexp(root: str, model: str) -> tuple[float, float]:
    """(loop seconds, start-up seconds) of one default `dlexp-train` run."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "dlexp", f"model={model}", f"data.root={root}",
               "progress=false", f"hydra.run.dir={out}"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        timing = json.loads((Path(out) / "metrics.json").read_text())["timing"]
    return timing["wall_s"], timing["startup_s"]


def run_bare(root: str, script: str) -> float:
    proc = subprocess.run([sys.executable, "-c", script, root], check=True, capture_output=True)
    return float(proc.stdout.split()[-1])


def whole_runs(root: str, model: str, bare_script: str, repeats: int) -> None:
    dlexp_s, startup_s, bare_s = [], [], []
    for _ in range(repeats):  # alternate, so drifting machine load hits both alike
        loop, startup = run_dlexp(root, model)
        dlexp_s.append(loop)
        startup_s.append(startup)
        bare_s.append(run_bare(root, bare_script))
    med = statistics.median
    print(f"\n### {model}: default run, {repeats} alternating repeats (medians)\n")
    print("| dlexp loop s | bare loop s | ratio | dlexp start-up s |\n|---|---|---|---|")
    print(f"| {med(dlexp_s):.2f} | {med(bare_s):.2f} | {med(dlexp_s) / med(bare_s):.2f}x "
          f"| {med(startup_s):.2f} |")  # fmt: skip


def convnet_steps(root: str, repeats: int, steps: int) -> None:
    import numpy as np
    import torch
    from hydra import compose, initialize_config_module
    from torch import nn

    from dlexp.build import build_parts, make_backend
    from dlexp.data import BatchSampler, load_cifar10

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_convnet_step import bare_table1

    with initialize_config_module("dlexp.conf", version_base="1.3"):
        overrides = [f"data.root={root}", "model=convnet", "device=cpu", "output_dir=/x"]
        cfg = compose("train", overrides=overrides)
    data = load_cifar10(root)
    backend = make_backend(build_parts(cfg, np.random.default_rng(0)), data, cfg)
    bare = bare_table1()  # torch.nn only, the library issue's reference
    bare_opt = torch.optim.Adam(bare.parameters(), lr=1e-4)
    x_all, y_all = backend.splits["train"]
    sampler = BatchSampler(len(data.train), 32, np.random.default_rng(0))

    def bare_step(batch):
        idx = torch.from_numpy(batch.indices)
        loss = nn.functional.cross_entropy(bare(x_all[idx]), y_all[idx])
        bare_opt.zero_grad(set_to_none=True)
        loss.backward()
        bare_opt.step()

    dlexp_ms, bare_ms = [], []
    for _ in range(repeats):
        for fn, sink in ((backend.train_step, dlexp_ms), (bare_step, bare_ms)):
            batches = [sampler.next_batch() for _ in range(steps)]
            start = time.perf_counter()
            for batch in batches:
                fn(batch)
            sink.append((time.perf_counter() - start) / steps * 1000)
    med = statistics.median
    print(f"\n### convnet: train step, batch 32, {repeats} x {steps} interleaved steps (medians)\n")
    print("| dlexp step ms | bare step ms | ratio |\n|---|---|---|")
    print(f"| {med(dlexp_ms):.0f} | {med(bare_ms):.0f} | {med(dlexp_ms) / med(bare_ms):.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--convnet-steps", type=int, default=10)
    parser.add_argument("--part", nargs="+", default=["numpy", "torch_mlp", "convnet"])
    args = parser.parse_args()
    root = os.environ.get("DLEXP_DATA") or "data"
    if "numpy" in args.part:
        whole_runs(root, "numpy_mlp", BARE_NUMPY, args.repeats)
    if "torch_mlp" in args.part:
        whole_runs(root, "torch_mlp", BARE_TORCH_MLP, args.repeats)
    if "convnet" in args.part:
        convnet_steps(root, args.repeats, args.convnet_steps)


if __name__ == "__main__":
    main()
