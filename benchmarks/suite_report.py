"""The suite's report: the machine's description, the markdown table, and docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from importlib import metadata
from pathlib import Path

from benchmarks.suite_rows import Row
from benchmarks.suite_run import run_child

START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
COLUMNS = ("row", "what", "dlexp", "reference", "ratio", "goal", "verdict",
           "peak RSS MB (dlexp / ref)", "runs", "note")  # fmt: skip


def _first(path: str, key: str) -> str | None:
    """The value of the first `key: value` line of a /proc file, or None."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


GPU_PROBE = "import torch; print(torch.cuda.is_available() and torch.cuda.get_device_name(0) or '')"


def gpu_name() -> str | None:
    """The first CUDA device's name, or None; asked in a child, so this process stays small."""
    if "+cpu" in metadata.version("torch"):  # a CPU-only build: skip the 2-3 s import
        return None
    name = run_child([sys.executable, "-c", GPU_PROBE]).stdout.strip()
    return name.splitlines()[-1] if name else None


def parent_rss_mb() -> float:
    """This process's peak RSS: Linux carries it into every child as a floor of ru_maxrss."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def describe_machine(gpu: str | None) -> str:
    """CPU model, cores, memory, library versions and GPU, in one line."""
    cpu = _first("/proc/cpuinfo", "model name") or platform.processor() or platform.machine()
    mem_kib = _first("/proc/meminfo", "MemTotal")
    mem = f"{int(mem_kib.split()[0]) / 2**20:.0f} GiB memory" if mem_kib else "memory unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("numpy", "torch"))
    return (f"{cpu}, {usable} cores usable ({os.cpu_count()} logical), {mem}; "
            f"Python {platform.python_version()}, {versions}; "
            f"{gpu or 'no GPU'}")  # fmt: skip


def table(rows: list[Row]) -> str:
    """The rows as a markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = (f"`{row.name}`", row.what, row.dlexp, row.reference, row.ratio, row.goal,
                 row.verdict, row.peak_rss_mb, row.runs, row.note)  # fmt: skip
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def section(rows: list[Row], machine: str, load: tuple[float, float], repeats: int) -> str:
    """The dated, generated section of docs/benchmarks.md (without its markers)."""
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    return "\n".join([
        "## The suite: `python -m benchmarks` (generated; rerunning replaces this section)",
        "",
        f"Measured {when}, {repeats} interleaved repeats, medians. Machine: {machine}. "
        f"Load average (1 min) {load[0]:.2f} at the start, {load[1]:.2f} at the end.",
        "",
        "- **Whole runs** (`numpy_run`, `torch_mlp_run`) are timed by the parent from spawning "
        "the process to reaping it, dlexp-train and the bare script alternately.",
        "- **Peak RSS** is each child process's own `ru_maxrss` (`os.wait4` on its pid); rows "
        "measured in one process run in a fresh `python -m benchmarks.rows_*` child. Linux "
        "carries the spawning process's peak into the child's, so the suite's own process "
        f"stays small: {parent_rss_mb():.0f} MB, a floor under every figure.",
        "",
        table(rows),
    ])  # fmt: skip


def replace_section(text: str, body: str) -> str:
    """`text` with the marked section replaced by `body`, or with it appended when absent."""
    block = f"{START}\n{body.rstrip()}\n{END}"
    start, end = text.find(START), text.find(END)
    if start != -1 and end > start:
        return text[:start] + block + text[end + len(END) :]
    return text.rstrip() + "\n\n" + block + "\n"


def write_docs(path: Path, body: str) -> None:
    """Replace (or add) the generated section of the markdown file at `path`."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(replace_section(text, body))
