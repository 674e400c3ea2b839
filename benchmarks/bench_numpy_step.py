"""Time one NumPy MLP training step against the two big matmuls it cannot avoid.

The step is what the NumPy backend runs for the seed's default MLP (batch 200, 3072 -> 100 -> 10,
float32): forward, fused softmax-cross-entropy and backward in preallocated buffers
(MLPStepBuffers), then the SGD update. The module-by-module step (MLP.forward_logits,
softmax_cross_entropy, MLP.backward_logits) is timed too. The floor is x @ W1^T (forward) and
dW1 = dout^T @ x: every other op in the step is small next to these. Both are timed in the
same process, interleaved, so a busy machine slows both alike and the ratio stays fair.

Usage: python benchmarks/bench_numpy_step.py [--repeats 300] [--inner 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_timing import time_ms

from dlexp.numpy_nn import MLP, SGD, softmax_cross_entropy
from dlexp.numpy_nn.fused_step import MLPStepBuffers

BATCH, N_INPUTS, N_HIDDEN, N_CLASSES = 200, 3072, 100, 10  # the seed's defaults
LR, NEG_SLOPE = 2e-3, 0.02
DTYPE = np.float32
GOAL_RATIO = 1.2  # the "Speed" issue: a step may cost at most 1.2x the two matmuls
PHASES = ("forward_logits", "loss_and_backward", "SGD.step")


class Step:
    """One full training step on a fixed batch, callable whole or phase by phase."""

    def __init__(self, rng: np.random.Generator):
        self.model = MLP(N_INPUTS, [N_HIDDEN], N_CLASSES, NEG_SLOPE, rng=rng, dtype=DTYPE)
        self.optimizer = SGD(self.model.parameters(), lr=LR)
        self.x = rng.standard_normal((BATCH, N_INPUTS)).astype(DTYPE)
        self.labels = rng.integers(0, N_CLASSES, size=BATCH)
        self.buffers = MLPStepBuffers(self.model, BATCH)

    def __call__(self) -> None:
        self.buffers.forward_logits(self.x)
        self.buffers.loss_and_backward(self.labels)
        self.optimizer.step()

    def module_by_module(self) -> None:
        """The same step through the modules, allocating as it goes."""
        logits = self.model.forward_logits(self.x)
        _, dlogits = softmax_cross_entropy(logits, self.labels)
        self.model.backward_logits(dlogits)
        self.optimizer.step()

    def phase_ms(self) -> list[float]:
        """ms of each phase of one step, in PHASES order."""
        t0 = time.perf_counter()
        self.buffers.forward_logits(self.x)
        t1 = time.perf_counter()
        self.buffers.loss_and_backward(self.labels)
        t2 = time.perf_counter()
        self.optimizer.step()
        t3 = time.perf_counter()
        return [(b - a) * 1e3 for a, b in ((t0, t1), (t1, t2), (t2, t3))]


def make_matmuls(rng: np.random.Generator):
    """A closure running only the two big matmuls, into preallocated outputs.

    W is stored (in, out) C-contiguous, the layout LinearModule keeps behind its (out, in)
    view and the fastest one for OpenBLAS, so the floor is as low as these matmuls go.
    """
    x = rng.standard_normal((BATCH, N_INPUTS)).astype(DTYPE)
    weight_t = rng.standard_normal((N_INPUTS, N_HIDDEN)).astype(DTYPE)  # W^T
    dout = rng.standard_normal((BATCH, N_HIDDEN)).astype(DTYPE)
    hidden = np.empty((BATCH, N_HIDDEN), dtype=DTYPE)
    dweight_t = np.empty_like(weight_t)

    def matmuls() -> None:
        np.matmul(x, weight_t, out=hidden)  # (200, 3072) x (3072, 100)
        np.matmul(x.T, dout, out=dweight_t)  # (3072, 200) x (200, 100): dW^T

    return matmuls


def measure(repeats: int, inner: int, seed: int = 0) -> dict[str, list[float]]:
    """ms samples of the step, the matmuls and each phase, taken alternately."""
    rng = np.random.default_rng(seed)
    step, matmuls = Step(rng), make_matmuls(rng)
    for _ in range(20):  # warm-up: BLAS threads, allocator, caches
        step()
        matmuls()
    names = ("step", "matmuls", "module_step", *PHASES)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):  # interleaved, so load drifts hit step and matmuls alike
        samples["step"].append(time_ms(step, inner))
        samples["matmuls"].append(time_ms(matmuls, inner))
        samples["module_step"].append(time_ms(step.module_by_module, inner))
        for name, ms in zip(PHASES, step.phase_ms(), strict=True):
            samples[name].append(ms)
    return samples


def report(samples: dict[str, list[float]], repeats: int, inner: int) -> str:
    """A markdown table: medians and minimums, the ratio, and the step's phases."""
    med = {name: statistics.median(values) for name, values in samples.items()}
    low = {name: min(values) for name, values in samples.items()}
    ratio = med["step"] / med["matmuls"]
    # Each pair ran back to back, so its ratio sees the same machine load on both sides.
    paired = statistics.median(
        s / m for s, m in zip(samples["step"], samples["matmuls"], strict=True)
    )
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    lines = [
        f"batch {BATCH}, {N_INPUTS}->{N_HIDDEN}->{N_CLASSES}, {np.dtype(DTYPE).name}; "
        f"{repeats} alternating samples of each, {inner} calls per sample\n",
        "| what | median ms | min ms |",
        "|---|---|---|",
        f"| training step (fwd + bwd + SGD) | {med['step']:.3f} | {low['step']:.3f} |",
        f"| module-by-module step | {med['module_step']:.3f} | {low['module_step']:.3f} |",
        f"| two big matmuls alone | {med['matmuls']:.3f} | {low['matmuls']:.3f} |",
        f"| **ratio step / matmuls** | **{ratio:.2f}x** | {low['step'] / low['matmuls']:.2f}x |",
        *(f"| &nbsp; phase: `{name}` | {med[name]:.3f} | {low[name]:.3f} |" for name in PHASES),
        f"\nratio {ratio:.2f}x {verdict} the {GOAL_RATIO}x goal; "
        f"median of per-pair ratios {paired:.2f}x",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300, help="alternating samples of each")
    parser.add_argument("--inner", type=int, default=5, help="calls averaged per sample")
    args = parser.parse_args()
    print(report(measure(args.repeats, args.inner), args.repeats, args.inner))


if __name__ == "__main__":
    main()
