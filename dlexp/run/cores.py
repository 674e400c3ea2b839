"""CPU threads per job, so that parallel sweep jobs split the cores instead of fighting for them.

joblib's workers (hydra/launcher=joblib) already get OMP_NUM_THREADS = cores // n_jobs from loky
before NumPy or torch load. A SLURM job (submitit_slurm, or submitit_local with
hydra.launcher.cpus_per_task) is given SLURM_CPUS_PER_TASK, which torch does not read by itself.
"""

from __future__ import annotations

import os
import sys


def cpus_for_this_job() -> int | None:
    """The cores a launcher gave this job, or None when it gave no figure."""
    for variable in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def share_cores() -> int:
    """Give torch (when loaded) this job's share of the cores; returns the threads in use."""
    cpus = cpus_for_this_job()
    torch = sys.modules.get("torch")
    if torch is None:  # NumPy runs: BLAS read OMP_NUM_THREADS when it loaded
        return cpus or os.cpu_count() or 1
    if cpus is not None and torch.get_num_threads() != cpus:
        torch.set_num_threads(cpus)
    return torch.get_num_threads()
