"""Suite child: the ConvNet train step as dlexp's loop drives it, in one mode, median ms.

Usage: python -m benchmarks.rows_convnet --mode eager|compiled|bf16 --root DIR [--steps 10]
Builds the seed ConvNet run from the Hydra config (experiment=seed_convnet plus the mode's
overrides) and times `Backend.train_step` on real batches. Prints one JSON line; a mode that
dlexp does not offer yet prints {"unavailable": reason} and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

MODES = {  # mode -> the dlexp-train overrides that select it
    "eager": [],
    "compiled": ["compile=true"],
    "bf16": ["precision=bf16"],
}


def build(root: str, mode: str, batch_size: int | None):
    """(backend, sampler, device) for the seed ConvNet in `mode`, or a reason it is unavailable."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dlexp.build import build_parts, load_run_data, make_backend, seed_generators
    from dlexp.data import BatchSampler
    from dlexp.errors import ConfigError

    overrides = ["experiment=seed_convnet", f"data.root={root}", "output_dir=/unused",
                 "data.eval_subset=32", *MODES[mode]]  # fmt: skip
    if batch_size is not None:  # --quick: a smaller batch, so a CPU step takes well under 1 s
        overrides.append(f"batch_size={batch_size}")
    try:
        with initialize_config_module("dlexp.conf", version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        model_rng, sampler_rng = seed_generators(cfg.seed)
        parts = build_parts(cfg, model_rng)
    except (HydraException, OmegaConfBaseException, ConfigError) as err:
        return f"{' '.join(MODES[mode])}: {str(err).splitlines()[0][:120]}"
    backend = make_backend(parts, load_run_data(cfg), cfg)
    sampler = BatchSampler(len(backend.splits["train"][1]), cfg.batch_size, sampler_rng)
    return backend, sampler, parts.device


def time_steps(backend, sampler, device, warmup: int, steps: int) -> list[float]:
    """ms of each of `steps` train steps after `warmup` untimed ones (synchronised on CUDA)."""
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):  # oneDNN primitives, allocator; torch.compile compiles here
        backend.train_step(sampler.next_batch())
    sync()
    samples = []
    for _ in range(steps):
        batch = sampler.next_batch()
        start = time.perf_counter()
        backend.train_step(batch)
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=list(MODES), required=True)
    parser.add_argument("--root", required=True, help="the folder holding cifar-10-batches-py")
    # 5 untimed steps: a compiled backend times (and syncs) its first 5 to report compile_s
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (at least 1)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the seed's 32")
    args = parser.parse_args()
    built = build(args.root, args.mode, args.batch_size)
    if isinstance(built, str):
        print(json.dumps({"unavailable": built}))
        return
    backend, sampler, device = built
    start = time.perf_counter()
    samples = time_steps(backend, sampler, device, 1, 0)  # torch.compile compiles in step 1
    if args.mode == "compiled" and getattr(backend, "compile_s", None) is None:
        print(json.dumps({"unavailable": "dlexp's torch backend ignores compile=true so far"}))
        return
    samples = time_steps(backend, sampler, device, max(args.warmup - 1, 0), args.steps)
    print(json.dumps({"median_ms": statistics.median(samples), "min_ms": min(samples),
                      "device": str(device), "total_s": time.perf_counter() - start,
                      "compile_s": getattr(backend, "compile_s", 0.0)}))  # fmt: skip


if __name__ == "__main__":
    main()
