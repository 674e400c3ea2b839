"""Time the custom batch norms' forward + backward against nn.BatchNorm2d at the ConvNet's shapes.

custom_bn is ManualBatchNorm (the autograd.Function with a hand-written backward); autograd_bn
is AutogradBatchNorm (torch ops, autograd's backward). Each shape is the input of a Table 1
norm layer at batch 32, in training mode (batch statistics plus the running-stat update). The
three are timed in the same process, interleaved, so a busy machine slows all alike.

--compiled adds custom_bn under torch.compile (the layer's forward; AOTAutograd compiles the
hand-written backward too), as a compile=true run trains it; it compiles once per shape first.

Usage: python benchmarks/bench_batchnorm.py [--repeats 20] [--inner 3] [--threads N] [--compiled]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bench_timing import time_ms
from torch import nn

from dlexp.nn import AutogradBatchNorm, ManualBatchNorm

# (N, C, H, W) at each distinct Table 1 norm layer, batch 32, CIFAR 32x32 input.
SHAPES = [(32, 64, 32, 32), (32, 128, 16, 16), (32, 256, 8, 8), (32, 512, 4, 4), (32, 512, 2, 2)]
NORMS = {"torch_bn": nn.BatchNorm2d, "custom_bn": ManualBatchNorm, "autograd_bn": AutogradBatchNorm}
GOAL_RATIO = 1.5  # issue "Speed": custom_bn at most 1.5x nn.BatchNorm2d
WARMUP = 3  # calls per norm and shape before timing


def make_fwd_bwd(layer: nn.Module, x: torch.Tensor, dout: torch.Tensor):
    """A closure running forward + backward into fresh gradients."""
    x = x.clone().requires_grad_()

    def fwd_bwd() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)  # assign, never accumulate: same work for all
        layer(x).backward(dout)

    return fwd_bwd


def compiled_custom_bn(channels: int) -> nn.Module:
    """ManualBatchNorm whose forward (and so its backward) torch.compile has compiled."""
    layer = ManualBatchNorm(channels)
    layer.forward = torch.compile(layer.forward, dynamic=False)
    return layer


def measure_shape(shape, repeats: int, inner: int, compiled: bool = False) -> dict[str, float]:
    """Median ms per norm at one shape, the norms taken in rotating order."""
    x, dout = torch.randn(shape), torch.randn(shape)
    norms = {**NORMS, "custom_bn compiled": compiled_custom_bn} if compiled else NORMS
    fns = {name: make_fwd_bwd(make(shape[1]), x, dout) for name, make in norms.items()}
    for fn in fns.values():
        for _ in range(WARMUP):
            fn()
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        k = i % len(names)
        for name in names[k:] + names[:k]:  # rotate: no first-mover bias
            samples[name].append(time_ms(fns[name], inner))
    return {name: statistics.median(ms) for name, ms in samples.items()}


def print_table(results: dict[tuple, dict[str, float]]) -> None:
    """Markdown: ms per norm and the ratios to torch_bn, per shape and summed."""
    names = list(next(iter(results.values())))
    others = [name for name in names if name != "torch_bn"]
    print("| shape | " + " | ".join(f"{name} ms" for name in names) + " | "
          + " | ".join(f"{name} / torch" for name in others) + " |")  # fmt: skip
    print("|---" * (len(names) + len(others) + 1) + "|")
    summed = {name: sum(ms[name] for ms in results.values()) for name in names}
    rows = [*((str(shape), ms) for shape, ms in results.items()), ("all shapes (sum)", summed)]
    for label, ms in rows:
        cells = [f"{ms[name]:.3f}" for name in names]
        cells += [f"{ms[name] / ms['torch_bn']:.2f}x" for name in others]
        print(f"| {label} | " + " | ".join(cells) + " |")
    for name in ("custom_bn", "custom_bn compiled"):
        if name in summed:
            ratio = summed[name] / summed["torch_bn"]
            verdict = "meets" if ratio <= GOAL_RATIO else "misses"
            print(f"\n{name} over all shapes: {ratio:.2f}x ({verdict} the {GOAL_RATIO}x goal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="rotating samples of each norm")
    parser.add_argument("--inner", type=int, default=3, help="calls averaged per sample")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--compiled", action="store_true", help="add custom_bn under compile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {
        shape: measure_shape(shape, args.repeats, args.inner, args.compiled) for shape in SHAPES
    }
    print(f"batch norm forward + backward, train mode, float32, CPU, {torch.get_num_threads()} "
          f"threads, median of {args.repeats} x {args.inner} calls\n")  # fmt: skip
    print_table(results)


if __name__ == "__main__":
    main()
