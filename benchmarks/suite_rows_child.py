"""The suite's rows measured inside one Python process: each runs as `python -m benchmarks.rows_*`
in a fresh child, so that its peak RSS is its own."""

from __future__ import annotations

import math
import statistics

from benchmarks.rows_convnet import MODES
from benchmarks.suite_rows import Row, Suite, judge, rss
from benchmarks.suite_run import python_module, run_child

STEP_GOAL = 1.2  # the NumPy step may cost at most 1.2x its two big matmuls
QUICK_BATCH = 4  # --quick: a smoke test of the ConvNet path, not a figure
CONVNET_QUICK = ["--warmup", "1", "--steps", "1", "--batch-size", str(QUICK_BATCH)]


def numpy_step(suite: Suite) -> list[Row]:
    """One NumPy MLP step (batch 200) against x @ W1.T plus dout.T @ x, interleaved."""
    repeats, inner = ("5", "1") if suite.quick else ("300", "5")
    suite.say(f"numpy_step: {repeats} interleaved samples in one process")
    child = run_child(python_module("benchmarks.rows_numpy_step", "--repeats", repeats,
                                    "--inner", inner), suite.env)  # fmt: skip
    result = child.last_json()
    ratio = result["step_ms"] / result["matmuls_ms"]
    module_ms = result.get("module_step_ms", math.nan)
    module = "" if math.isnan(module_ms) else f"; module by module {module_ms:.2f} ms"
    return [Row("numpy_step", "NumPy MLP step (fwd + bwd + SGD) vs its two big matmuls",
                f"{result['step_ms']:.2f} ms", f"{result['matmuls_ms']:.2f} ms",
                f"{ratio:.2f}×", f"≤ {STEP_GOAL}×", judge(suite, ratio, STEP_GOAL),
                rss([child]), f"{repeats} × {inner} calls",
                f"per-pair ratio median {result['paired_ratio']:.2f}×{module}")]  # fmt: skip


def batchnorm(suite: Suite) -> list[Row]:
    """custom_bn vs nn.BatchNorm2d forward + backward, summed over the ConvNet's shapes."""
    args = ["--repeats", "1", "--inner", "1", "--shapes", "2"] if suite.quick else []
    suite.say("batchnorm: custom_bn, autograd_bn and nn.BatchNorm2d in one process")
    child = run_child(python_module("benchmarks.rows_batchnorm", *args), suite.env)
    result = child.last_json()
    ratio = result["custom_bn"] / result["torch_bn"]
    autograd = result["autograd_bn"] / result["torch_bn"]
    return [Row("batchnorm", f"custom_bn vs nn.BatchNorm2d, fwd + bwd, {result['shapes']} "
                "ConvNet shapes summed", f"{result['custom_bn']:.1f} ms",
                f"{result['torch_bn']:.1f} ms", f"{ratio:.2f}×", f"≤ {result['goal']}×",
                judge(suite, ratio, result["goal"]), rss([child]),
                "1 × 1 calls" if suite.quick else "20 × 3 calls",
                f"autograd_bn {autograd:.2f}×; CPU")]  # fmt: skip


def convnet_step(suite: Suite) -> list[Row]:
    """The ConvNet train step in each mode, one fresh process per mode and repeat, interleaved."""
    modes = [m for m in MODES if not (suite.quick and m == "compiled")]
    results: dict[str, list] = {mode: [] for mode in modes}
    unavailable: dict[str, str] = {}
    for i in range(suite.repeats):
        for mode in modes:
            if mode in unavailable:
                continue
            suite.say(f"convnet_step: repeat {i + 1}/{suite.repeats}, {mode}")
            args = ["--mode", mode, "--root", suite.root, *(CONVNET_QUICK if suite.quick else [])]
            child = run_child(python_module("benchmarks.rows_convnet", *args), suite.env)
            result = child.last_json()
            if "unavailable" in result:
                unavailable[mode] = result["unavailable"]
            else:
                results[mode].append((child, result))
    batch = QUICK_BATCH if suite.quick else 32
    eager = [r["median_ms"] for _, r in results.get("eager", [])]
    rows = []
    for mode in MODES:
        row = Row(f"convnet_step_{mode}", f"ConvNet train step, {mode}, batch {batch}")
        if mode not in modes:
            row.note = "skipped in --quick"
        elif mode in unavailable:
            row.note = f"not available: {unavailable[mode]}"
        else:
            med = statistics.median(r["median_ms"] for _, r in results[mode])
            row.dlexp = f"{med:.0f} ms"
            row.ratio = f"{med / statistics.median(eager):.2f}× eager" if eager else "—"
            row.peak_rss_mb, row.runs = rss([c for c, _ in results[mode]]), str(len(results[mode]))
            compile_s = statistics.median(r["compile_s"] for _, r in results[mode])
            row.note = f"compile {compile_s:.1f} s; " if mode == "compiled" else ""
        row.note += suite.torch_device() if not row.note.startswith(("skipped", "not")) else ""
        rows.append(row)
    return rows
