"""dlexp's worker pool: `n_jobs` slots, each running one sweep job at a time in a process of its
own, with no batch barrier: when a job ends, the next one starts at once (docs/sweeps.md).

Hydra's launchers run a sweep in batches and wait for a batch's slowest job. Here each job is a
forked process that composes its config and runs it through Hydra's own `run_job`, as Hydra's
basic launcher does, so its folder, record and failure handling are the same. A job process:
- gets its share of the cores (OMP_NUM_THREADS, and NumPy's BLAS through threadpoolctl);
- on a machine with GPUs given as `devices`, its slot's CUDA_VISIBLE_DEVICES;
- dies with the sweep: its parent's death sends it SIGTERM (Linux), and it stops after a
  checkpoint;
- that exits abnormally (killed, crashed outside dlexp's handling) is retried in its own folder,
  where it resumes from its checkpoint, up to `max_retries` times.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus, run_job
from omegaconf import OmegaConf, open_dict
from threadpoolctl import threadpool_limits

from dlexp.errors import ConfigError

log = logging.getLogger(__name__)

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"  # a name, not an API
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
GRACE_S = 30.0  # after Ctrl-C, how long the jobs get to finish their step and checkpoint
TICK_S = 1.0  # with a tick: how often the pool calls it while it waits


def uses_pool(config) -> bool:
    """Whether the sweep runs on the pool: Hydra's launcher is its default (basic) one. Another
    launcher (joblib, submitit) keeps Hydra's batches."""
    return str(config.hydra.launcher.get("_target_", "")) == BASIC_LAUNCHER


@dataclass
class Job:
    number: int  # the job's index: its folder's prefix and hydra.job.num
    overrides: list[str]
    handle: object = None  # the caller's own (an Optuna trial)
    attempt: int = 0  # 0, then 1, ... for each retry after an abnormal exit
    folder: Path | None = None  # an earlier job's folder to run in (and resume from); None: its own


@dataclass
class Finished:
    job: Job
    ret: JobReturn  # a failed JobReturn when the process died without a word
    exitcode: int
    died: bool = False  # the process ended abnormally (after its retries): no word from it


@dataclass
class SlotTimes:
    """When each job ran, to measure how busy the slots were (pool.json in the sweep folder)."""

    start: float = field(default_factory=time.time)
    busy: list[tuple[int, float, float]] = field(default_factory=list)  # (job, start, end)
    drained: float | None = None  # when no job was left to start

    def idle_share(self, slots: int) -> float:
        """Slot-time with no job running while jobs remained, over all slot-time until then."""
        end = self.drained or max((b for _, _, b in self.busy), default=self.start)
        total = slots * (end - self.start)
        used = sum(max(0.0, min(b, end) - a) for _, a, b in self.busy if a < end)
        return 0.0 if total <= 0 else max(0.0, 1 - used / total)


def _die_with_parent() -> None:
    """SIGTERM when the sweep's process dies, even by SIGKILL (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _child(conn, context, task_function, config, job: Job, overrides: list, environment: dict):
    """A job process: compose the job's config, run it as Hydra's basic launcher would, send back
    its JobReturn, and leave without running the parent's exit handlers."""
    code = 0
    try:
        _die_with_parent()
        for signum in (signal.SIGINT, signal.SIGTERM):  # not the sweep's: dlexp's run sets its own
            signal.signal(signum, signal.SIG_DFL)
        os.environ.update(environment)
        threadpool_limits(int(environment["OMP_NUM_THREADS"]))  # NumPy's BLAS loaded already
        sweep_config = context.config_loader.load_sweep_config(config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = job.number
            if job.folder is not None:  # a dead trial's folder, another sweep's maybe
                sweep_config.hydra.sweep.dir = str(job.folder.parent)
                sweep_config.hydra.sweep.subdir = job.folder.name
        ret = run_job(
            hydra_context=context,
            task_function=task_function,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        _send(conn, ret.status, ret._return_value, str(ret.hydra_cfg.hydra.runtime.output_dir))
    except BaseException as err:
        code = 1
        _send(conn, JobStatus.FAILED, err, "")
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _send(conn, status: JobStatus, value, output_dir: str) -> None:
    """A job's outcome, small enough for the pipe's buffer (the parent reads it once the job
    process has ended): the status, the return value (an error's text if it does not pickle)
    and the job's folder. The job's metrics.json holds the rest."""
    try:
        conn.send((status.name, value, output_dir))
    except Exception:  # an unpicklable value
        conn.send((status.name, f"{type(value).__name__}: {value}"[:2000], output_dir))


def _received(receive) -> JobReturn | None:
    """The JobReturn of what a job process sent; None when it died without a word."""
    try:
        status, value, output_dir = receive.recv() if receive.poll() else (None, None, None)
    except (EOFError, OSError):  # closed by the process's death with nothing written
        return None
    finally:
        receive.close()
    if status is None:
        return None
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": output_dir}}})
    ret = JobReturn(status=JobStatus[status], hydra_cfg=hydra_cfg, working_dir=output_dir)
    ret._return_value = value
    return ret


class WorkerPool:
    """Run jobs on `n_jobs` slots until `next_job` has none left; `on_finished` hears of each."""

    def __init__(self, hydra_context, task_function, config, n_jobs: int, max_retries: int = 1,
                 devices: list | None = None, slots_per_device: int = 1):  # fmt: skip
        if max_retries < 0:
            raise ConfigError(f"hydra.sweeper.max_retries must be >= 0, got {max_retries}")
        if slots_per_device < 1:
            raise ConfigError(
                f"hydra.sweeper.slots_per_device must be >= 1, got {slots_per_device}"
            )
        self.devices = [str(d) for d in devices or []]
        self.n_jobs = len(self.devices) * slots_per_device if self.devices else n_jobs
        if self.n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs must be >= 1, got {n_jobs}")
        self.context, self.task_function, self.config = hydra_context, task_function, config
        self.max_retries, self.slots_per_device = max_retries, slots_per_device
        self.cpus = max(1, (os.cpu_count() or 1) // self.n_jobs)
        start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._mp = multiprocessing.get_context(start_method)
        self.times = SlotTimes()
        self.stopped_by: int | None = None  # the signal that stopped the sweep

    def slot_environment(self, slot: int) -> dict:
        """What a slot's job process gets: its cores, and its GPU when devices are given."""
        environment = {"OMP_NUM_THREADS": str(self.cpus), "MKL_NUM_THREADS": str(self.cpus)}
        if self.devices:
            environment["CUDA_VISIBLE_DEVICES"] = self.devices[slot // self.slots_per_device]
        return environment

    def _start(self, job: Job, slot: int, running: dict) -> None:
        receive, send = self._mp.Pipe(duplex=False)
        env = self.slot_environment(slot)
        quiet = ["progress=false"] if self.n_jobs > 1 else []  # side by side, bars interleave
        args = (send, self.context, self.task_function, self.config, job,
                [*job.overrides, *quiet], env)  # fmt: skip
        process = self._mp.Process(target=_child, args=args, name=f"dlexp-job-{job.number}")
        process.start()
        send.close()
        running[process.sentinel] = (process, receive, job, slot, time.time())

    def run(self, next_job: Callable[[], Job | None], on_finished: Callable[[Finished], None],
            tick: Callable[[list[Job]], bool] | None = None):  # fmt: skip
        """Ctrl-C or SIGTERM stops the sweep: its jobs stop after a checkpoint, then it raises
        KeyboardInterrupt (the handlers are set here: a sweep started by a script in the
        background inherits SIGINT as ignored).

        tick: called about every TICK_S with the running jobs (a search's heartbeats); when no
        job is running or left, the pool waits as long as it returns True, asking `next_job`
        again after each call."""
        previous = {s: signal.signal(s, self._interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._run(next_job, on_finished, tick)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self, next_job, on_finished, tick) -> None:
        running: dict = {}
        free = list(range(self.n_jobs))
        retry: list[Job] = []
        try:
            while True:
                while free:
                    job = retry.pop(0) if retry else next_job()
                    if job is None:
                        self.times.drained = self.times.drained or time.time()
                        break
                    self._start(job, free.pop(0), running)
                jobs = [job for _, _, job, *_ in running.values()]
                if not running:
                    if tick is None or not tick(jobs):
                        return
                    time.sleep(TICK_S)
                    continue
                ready = wait(list(running), timeout=TICK_S if tick else None)
                if tick is not None:
                    tick(jobs)
                for sentinel in ready:
                    process, receive, job, slot, started = running.pop(sentinel)
                    process.join()
                    self.times.busy.append((job.number, started, time.time()))
                    free.append(slot)
                    ret = _received(receive)
                    died = ret is None
                    if ret is None and job.attempt < self.max_retries:  # died without a word
                        log.warning("job %d's process ended abnormally (exit code %s): retrying it "
                                    "in its folder, from its checkpoint", job.number,
                                    process.exitcode)  # fmt: skip
                        job.attempt += 1
                        retry.append(job)
                        continue
                    if ret is None:
                        ret = JobReturn(status=JobStatus.FAILED)
                        ret._return_value = RuntimeError(
                            f"the job's process ended abnormally (exit code {process.exitcode})"
                        )
                    on_finished(Finished(job, ret, process.exitcode, died))
        finally:
            self._stop(running)

    def _interrupt(self, signum, frame) -> None:
        self.stopped_by = signum
        raise KeyboardInterrupt(f"the sweep was stopped by {signal.Signals(signum).name}")

    def _stop(self, running: dict) -> None:
        """An interrupted sweep: its jobs stop after their step and a checkpoint. Ctrl-C reached
        them too (the terminal signals the whole process group), so they get time to do it;
        otherwise, or when one takes too long, it gets SIGTERM, its first stop signal."""
        processes = [process for process, *_ in running.values()]
        if self.stopped_by == signal.SIGINT:
            deadline = time.time() + GRACE_S
            while any(p.is_alive() for p in processes) and time.time() < deadline:
                wait([p.sentinel for p in processes if p.is_alive()], timeout=0.2)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process, receive, *_ in running.values():
            process.join()
            receive.close()

    def write_times(self, sweep_dir: Path) -> float:
        """pool.json: the slots' busy intervals and idle share; returns the share."""
        idle = self.times.idle_share(self.n_jobs)
        record = {"slots": self.n_jobs, "start": self.times.start, "drained": self.times.drained,
                  "busy": self.times.busy, "idle_share": round(idle, 4)}  # fmt: skip
        (sweep_dir / "pool.json").write_text(json.dumps(record, indent=1) + "\n")
        return idle
