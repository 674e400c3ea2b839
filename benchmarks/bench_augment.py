"""Time flip_crop augmentation per batch, NumPy and torch CPU, against naive versions of the op.

Each candidate draws fresh parameters and augments a CIFAR-shaped float32 batch, at the NumPy
MLP's batch (200) and the ConvNet's (32). The naive versions are the same op written plainly:
NumPy with np.pad and a fresh gather per batch, a per-image loop, and torch per image
(pad, slice, flip, stack), as a per-sample transform pipeline would run it. The cost is also
put against one NumPy MLP training step and its two big matmuls (x @ W^T and dout^T @ x).
All candidates are timed in the same process in rotating order, so load hits them alike.

Usage: python benchmarks/bench_augment.py [--repeats 100] [--inner 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from bench_timing import time_ms
from torch.nn import functional

from dlexp.data.augment import BatchAugmenter, draw_augment
from dlexp.nn.augment import augment_batch as torch_augment_batch
from dlexp.nn.augment import crop_indices
from dlexp.numpy_nn import MLP, SGD, softmax_cross_entropy

BATCHES = (200, 32)  # the NumPy/torch MLP's batch, the ConvNet's batch
SHAPE = (3, 32, 32)  # CIFAR-10, channels first
N_INPUTS, N_HIDDEN, N_CLASSES = 3072, 100, 10  # the seed's MLP
MODE, PAD = "flip_crop", 4
WARMUP = 10  # calls per candidate before timing: allocator, caches, torch kernels
STEP, FLOOR = ("numpy MLP step", BATCHES[0]), ("two matmuls", BATCHES[0])


def numpy_ours(x: np.ndarray, rng: np.random.Generator):
    """dlexp's BatchAugmenter writing into a reused output."""
    augmenter, out = BatchAugmenter(), np.empty_like(x)
    return lambda: augmenter(x, draw_augment(rng, len(x), MODE, PAD), out)


def numpy_naive(x: np.ndarray, rng: np.random.Generator):
    """np.pad per batch, then one fancy-index gather into a fresh array."""

    def run() -> np.ndarray:
        params = draw_augment(rng, len(x), MODE, PAD)
        padded = np.pad(x, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
        index = crop_indices(params, *x.shape[2:])
        rows, cols = index[:, : x.shape[2]], index[:, x.shape[2] :]
        n, c = np.arange(len(x))[:, None, None, None], np.arange(x.shape[1])[None, :, None, None]
        return padded[n, c, rows[:, None, :, None], cols[:, None, None, :]]

    return run


def numpy_loop(x: np.ndarray, rng: np.random.Generator):
    """np.pad, slice and mirror image by image."""
    h, w = x.shape[2:]

    def run() -> np.ndarray:
        params = draw_augment(rng, len(x), MODE, PAD)
        out = np.empty_like(x)
        for n, (flip, dy, dx) in enumerate(zip(*params[:3], strict=True)):
            crop = np.pad(x[n], ((0, 0), (PAD, PAD), (PAD, PAD)))[:, dy : dy + h, dx : dx + w]
            out[n] = crop[..., ::-1] if flip else crop
        return out

    return run


def torch_ours(x: np.ndarray, rng: np.random.Generator):
    """dlexp's torch augment_batch on a CPU tensor."""
    xt = torch.from_numpy(x)
    return lambda: torch_augment_batch(xt, draw_augment(rng, len(x), MODE, PAD))


def torch_loop(x: np.ndarray, rng: np.random.Generator):
    """Per image: functional.pad, slice, maybe flip, then torch.stack."""
    xt, (h, w) = torch.from_numpy(x), x.shape[2:]

    def run() -> torch.Tensor:
        params = draw_augment(rng, len(x), MODE, PAD)
        crops = []
        for image, flip, dy, dx in zip(xt, *params[:3], strict=True):
            crop = functional.pad(image, (PAD,) * 4)[:, dy : dy + h, dx : dx + w]
            crops.append(crop.flip(-1) if flip else crop)
        return torch.stack(crops)

    return run


CANDIDATES = {
    "numpy BatchAugmenter (dlexp)": numpy_ours,
    "numpy naive (np.pad + gather)": numpy_naive,
    "numpy per-image loop": numpy_loop,
    "torch augment_batch (dlexp)": torch_ours,
    "torch per-image loop": torch_loop,
}


def numpy_step(rng: np.random.Generator):
    """One NumPy MLP training step (fwd + softmax-CE + bwd + SGD) at batch 200, float32."""
    model = MLP(N_INPUTS, [N_HIDDEN], N_CLASSES, 0.02, rng=rng, dtype=np.float32)
    optimizer = SGD(model.parameters(), lr=2e-3)
    x = rng.standard_normal((BATCHES[0], N_INPUTS)).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, size=BATCHES[0])

    def step() -> None:
        _, dlogits = softmax_cross_entropy(model.forward_logits(x), labels)
        model.backward_logits(dlogits)
        optimizer.step()

    return step


def two_matmuls(rng: np.random.Generator):
    """The step's floor: x @ W^T and dout^T @ x into preallocated outputs."""
    x = rng.standard_normal((BATCHES[0], N_INPUTS)).astype(np.float32)
    weight = rng.standard_normal((N_HIDDEN, N_INPUTS)).astype(np.float32)
    dout = rng.standard_normal((BATCHES[0], N_HIDDEN)).astype(np.float32)
    hidden, dweight = np.empty((BATCHES[0], N_HIDDEN), np.float32), np.empty_like(weight)

    def matmuls() -> None:
        np.matmul(x, weight.T, out=hidden)  # (200, 3072) x (3072, 100)
        np.matmul(dout.T, x, out=dweight)  # (100, 200) x (200, 3072)

    return matmuls


def measure(repeats: int, inner: int, seed: int = 0) -> dict[tuple, list[float]]:
    """ms samples of every candidate at every batch size, and of the step and the matmuls."""
    rng = np.random.default_rng(seed)
    fns = {}
    for n in BATCHES:
        x = rng.standard_normal((n, *SHAPE)).astype(np.float32)
        fns |= {(name, n): make(x, np.random.default_rng(seed))
                for name, make in CANDIDATES.items()}  # fmt: skip
    fns |= {STEP: numpy_step(rng), FLOOR: two_matmuls(rng)}
    for fn in fns.values():
        for _ in range(WARMUP):
            fn()
    keys = list(fns)
    samples: dict[tuple, list[float]] = {key: [] for key in keys}
    for i in range(repeats):
        shift = i % len(keys)
        for key in keys[shift:] + keys[:shift]:  # rotate: no first-mover bias
            samples[key].append(time_ms(fns[key], inner))
    return samples


def share(samples: dict[tuple, list[float]], key: tuple, base: tuple) -> float:
    """Median over rounds of key / base in %: a round's samples saw about the same load."""
    return 100 * statistics.median(a / b for a, b in zip(samples[key], samples[base], strict=True))


def print_table(samples: dict[tuple, list[float]]) -> None:
    """Markdown: median ms per batch at each size, and batch 200 as a share of the NumPy step."""
    med = {key: statistics.median(ms) for key, ms in samples.items()}
    big, small = BATCHES
    print(f"| what | batch {big} ms | batch {small} ms | % of NumPy MLP step | "
          f"% of two matmuls |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name in CANDIDATES:
        key = (name, big)
        of_step, of_floor = share(samples, key, STEP), share(samples, key, FLOOR)
        print(f"| {name} | {med[key]:.3f} | {med[(name, small)]:.3f} | {of_step:.0f}% | "
              f"{of_floor:.0f}% |")  # fmt: skip
    print(f"| numpy MLP step (fwd + bwd + SGD) | {med[STEP]:.3f} | | 100% | |")
    print(f"| two matmuls (step floor) | {med[FLOOR]:.3f} | | | 100% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100, help="rotating samples of each")
    parser.add_argument("--inner", type=int, default=5, help="calls averaged per sample")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    samples = measure(args.repeats, args.inner)
    print(f"{MODE} (pad {PAD}), float32 {SHAPE} images, params drawn per call; CPU, "
          f"{torch.get_num_threads()} torch threads; median of {args.repeats} x {args.inner} "
          f"calls; shares are medians of per-round ratios\n")  # fmt: skip
    print_table(samples)


if __name__ == "__main__":
    main()
