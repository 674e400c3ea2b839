"""The one train entrypoint: `train(cfg) -> Run`; `objective(cfg)`, what Hydra's sweepers get back;
and `main()`, the `dlexp-train` command.

A data-parallel run (docs/distributed.md) passes here on every rank. `train` starts the ranks
itself (distributed.nproc_per_node > 1), or is one of them under torchrun or in a SLURM job of
several tasks; rank 0 decides the config and writes the run, the other ranks follow it.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from dlexp.api import Run, composed_overrides, hydra_initialized, save_config
from dlexp.build import augment_generator, build_parts, load_run_data, make_backend, seed_generators
from dlexp.cli import run_cli, run_cli_as_rank, run_job
from dlexp.data import BatchSampler
from dlexp.distributed import agreement, collectives, launch, process_group
from dlexp.distributed.process_group import Ranks
from dlexp.errors import DlexpError, failure_reason
from dlexp.loop import EarlyStopping, FitResult, LoopSchedule, NotLearning, fit
from dlexp.run import record
from dlexp.run.checkpoints import LAST, RunCheckpoints, find_checkpoint
from dlexp.run.cores import share_cores
from dlexp.run.environment import write_environment
from dlexp.run.folder import create_run_folder
from dlexp.run.loggers import NoLoggers, RunLoggers
from dlexp.run.resume import resumed_config, run_dir_of
from dlexp.run.signals import RunInterrupted, StopRequests, stopped_run
from dlexp.run.timing import mark_run_end, startup_origin

log = logging.getLogger("dlexp")
PEER_GRACE_S = 3.0  # a rank failing because another did leaves after it, to be named second


def train(cfg: DictConfig) -> Run:
    """Seed, build model/optimizer/schedule, then data and backend; run the loop.

    Returns the finished run (its folder, status, metrics and objective; `Run.model()` and
    `Run.predict()`). A failure is recorded in metrics.json (status failed) and raised; a stop
    signal is recorded (status interrupted) after a checkpoint, and raised as RunInterrupted.
    With distributed.nproc_per_node > 1 this process starts the ranks and returns what rank 0
    recorded; under torchrun or a SLURM job of several tasks it is one of the ranks (None on
    those above 0).
    """
    slurm = process_group.joined_ranks() is None and process_group.join_slurm_tasks(cfg.device)
    ranks = process_group.joined_ranks()
    try:
        if ranks is not None:
            return _train(cfg, ranks)
        cfg = _checkpoint_to_continue(cfg)  # a resumed run's saved config says how many ranks
        if OmegaConf.select(cfg, "distributed.nproc_per_node", default=1) > 1:
            return _launch(cfg)
        return _train(cfg, None, given=True)
    finally:
        if slurm:
            process_group.leave_process_group()


def objective(cfg: DictConfig) -> float | None:
    """`train(cfg)`'s objective (see `dlexp.run.record.objective`), what a sweeper optimises;
    None when a pruner stopped the run."""
    run = train(cfg)
    return None if run is None or run.status == "pruned" else run.objective


def _train(cfg: DictConfig, ranks: Ranks | None, given: bool = False) -> Run | None:
    """train() in this process: alone, or as one of `ranks` with rank 0's config; `given`: the
    config is final (resolved here, or by the launcher). None on the ranks that do not write."""
    result = FitResult()
    writes = ranks is None or ranks.writes
    run_cfg = cfg
    try:
        with StopRequests() as stop:  # from the start: a signal while loading is honoured too
            if not given:  # under torchrun or SLURM: rank 0 decides and tells the others
                run_cfg = agreement.shared_run_config(cfg, ranks, _checkpoint_to_continue)
            flag = stop if ranks is None else agreement.SharedStop(stop)  # stop after one step
            run = _run(run_cfg, result, flag, ranks)
    except Exception as err:
        lost = ranks is not None and process_group.failed_because_of_another_rank(err)
        if lost:  # the rank that failed first is the one to name
            err = DlexpError(f"another rank failed or stopped answering ({failure_reason(err)})")
        if writes:
            record.record_failure(run_cfg, result, err)
        if lost:
            time.sleep(PEER_GRACE_S)
        raise
    except KeyboardInterrupt as err:  # a second stop signal: no checkpoint of this step
        result.status, result.reason = "interrupted", str(err) or "aborted"
        if writes:
            record.record_failure(run_cfg, result, None)
        raise
    finally:
        mark_run_end()  # even after a failure: a sweep's next job starts its clock here
    signum = flag.signal or stop.signal  # agreed by the ranks, or after their last agreement
    if signum:  # also when the signal came during the last step: the command stops
        if ranks is not None:  # rank 0 has written the run: the ranks leave together
            collectives.wait_for_every_rank()
        folder = _run_folder(run_cfg)
        raise stopped_run(folder, result.status, result.reason, signum, stop.previous_handler())
    return run


def _run_folder(cfg: DictConfig) -> Path:
    return Path(cfg.output_dir) if cfg.resume is None else run_dir_of(cfg.resume)


def _launch(cfg: DictConfig) -> Run:
    """The self-launching form: refuse what does not fit, save the config, start the ranks on
    this machine, and read back what rank 0 recorded. A failed rank is recorded (status failed,
    naming the rank) and raised; a signal ends the command as a single run's does."""
    nproc = cfg.distributed.nproc_per_node
    parts = build_parts(cfg, seed_generators(cfg.seed)[0], Ranks(0, nproc, 0, nproc))
    out = create_run_folder(cfg)
    save_config(out, cfg)
    backend = parts.options.ranks.backend
    rank_args = (OmegaConf.to_container(cfg, resolve=True), backend,
                 process_group.threads_per_rank(nproc))  # fmt: skip
    try:
        signum = launch.launch_ranks(_rank_main, rank_args, nproc)
    except launch.RankFailed as failed:
        distributed = {"world_size": nproc, "backend": backend}
        record.record_rank_failure(out, cfg, str(failed), distributed)
        log.error("%s\n%s", failed, failed.traceback.rstrip())  # the console and train.log
        raise
    finally:
        mark_run_end()
    written = record.read_job_record(out)
    if signum is not None:  # to this process or to a rank: every rank stopped after one step
        status = written["status"] if (out / "metrics.json").is_file() else "interrupted"
        reason = written.get("reason") or "stopped before the run's first step"
        raise stopped_run(_run_folder(cfg), status, reason, signum)
    return Run.from_record(out, cfg, written)


def _rank_main(container: dict, backend: str, threads: int) -> None:
    """One rank of the self-launching form, in a process of its own: join the group and train
    with the launcher's config. Stopped by a signal, it exits 128 + the signal, as the command
    does (torch's agent would not read a returned value while it shuts the ranks down)."""
    os.setsid()  # a terminal's Ctrl-C reaches the launcher alone, which passes it on once
    launcher = os.getppid()
    process_group.die_with_parent()
    os.environ["OMP_NUM_THREADS"] = str(threads)  # share_cores() gives torch this many
    ranks = process_group.join_process_group(process_group.environment_ranks(), backend)
    status = None
    try:
        _train(OmegaConf.create(container), ranks, given=True)
    except RunInterrupted as stopped:
        status = stopped.exit_status
    finally:
        process_group.leave_process_group()
        if status is not None or os.getppid() != launcher:  # stopped, or the launcher is gone
            process_group.exit_now(status or 1)


def _follow(container: dict, ranks: Ranks) -> None:
    """A torchrun rank above 0: train with rank 0's config, in rank 0's folder."""
    _train(OmegaConf.create(container), ranks, given=True)


# Why a model's run sits at chance level, and the override that fixes it (NotLearning's line)
NOT_LEARNING_FIXES = {
    "numpy_mlp": "the course's init (model.init_std=1e-4) is too small for this depth: try "
    "model.init_std=1e-2",
    "torch_mlp": "the course's init (model.init=course) is too small for this depth: try "
    "model.init=default",
}


def _eval_hooks(cfg: DictConfig) -> list:
    """Early stopping and a search trial's pruning report, each when configured; then the check
    that the run learns (last: a checkpoint restores the hooks' states in this order)."""
    hooks = []
    if cfg.early_stop.patience is not None:
        hooks.append(EarlyStopping(cfg.optimized_metric, cfg.early_stop.patience))
    if cfg.search.trial is not None:
        from dlexp.search.trial_report import TrialReport  # imports Optuna: only in a search

        hooks.append(TrialReport.from_config(cfg.search, cfg.optimized_metric))
    fix = NOT_LEARNING_FIXES.get(cfg.model.name, "try a larger optim.lr or another init")
    hooks.append(NotLearning(cfg.model.get("n_classes", 10), fix))
    return hooks


def _command_line(cfg: DictConfig) -> list[str] | None:
    """This process's command-line overrides; for a config from dlexp.compose(), its overrides;
    None for a config made otherwise in Python (a resume then keeps the saved config)."""
    if HydraConfig.initialized():
        return list(HydraConfig.get().overrides.task)
    composed = composed_overrides(cfg)
    if composed is None:
        return None
    # The recomposed config's output_dir would be ${hydra:runtime.output_dir}, which only a
    # Hydra app resolves: the run folder is passed as the command's would be.
    return [*composed, f"output_dir='{cfg.output_dir}'"]


def _checkpoint_to_continue(cfg: DictConfig) -> DictConfig:
    """With resume=..., the run's saved config. A job that finds an unfinished run's checkpoint
    in its own folder (submitit requeues a preempted job there) resumes from it by itself."""
    if cfg.resume is not None:
        with hydra_initialized():  # resumed_config recomposes the run's overrides to compare
            return resumed_config(cfg.resume, _command_line(cfg))
    try:
        out = Path(cfg.output_dir)
    except Exception:  # train() called without an output_dir
        return cfg
    last = find_checkpoint(out, LAST)  # an older dlexp's last.ckpt too
    unfinished = not (out / "metrics.json").exists() or (
        record.read_job_record(out).get("status") == "interrupted"
    )  # killed, or stopped by a signal
    if last is not None and unfinished:
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.resume = str(last)
    return cfg


def _run(cfg: DictConfig, result: FitResult, stop, ranks: Ranks | None) -> Run | None:
    writes = ranks is None or ranks.writes  # rank 0 writes the run's files; the others follow
    random.seed(cfg.seed)
    model_rng, sampler_rng = seed_generators(cfg.seed)
    # Everything that can refuse the config is built before the data is read.
    parts = build_parts(cfg, model_rng, ranks)
    hooks = _eval_hooks(cfg) if writes else []
    loop_schedule = LoopSchedule(
        cfg.max_steps, cfg.eval_freq, cfg.log_freq, cfg.batch_size, cfg.eval_batch_size,
        cfg.checkpoint.every,
    )  # fmt: skip
    out = create_run_folder(cfg) if writes else Path(cfg.output_dir)  # rank 0 made it
    if ranks is not None:
        process_group.log_to_run_folder(out, ranks, hydra_logs=HydraConfig.initialized())
    if writes:
        save_config(out, cfg)  # what Hydra saves before the job, for a config composed in Python
    data = load_run_data(cfg)
    augment_rng = augment_generator(cfg.seed)
    backend = make_backend(parts, data, cfg, augment_rng)
    threads = share_cores()
    sampler = BatchSampler(len(data.train), cfg.batch_size, sampler_rng)
    generators = {"model": model_rng, "augment": augment_rng}
    every = loop_schedule.checkpoint_interval
    checkpoints = RunCheckpoints(
        out, every, cfg.max_steps, backend, sampler, generators, hooks, writes=writes
    )
    if cfg.resume is not None:
        checkpoints.restore(Path(cfg.resume), result)
        log.info("resuming %s from step %d", out, result.steps)
    ranked = parts.options.ranks
    distributed = None if ranks is None else {"world_size": ranked.world_size,
                                              "backend": ranked.backend}  # fmt: skip
    processes = None if ranks is None else process_group.rank_processes()  # every rank's pid
    if writes:  # once a resume can no longer be refused
        write_environment(
            out, parts.device, threads, distributed and {**distributed, "ranks": processes}
        )
    first_step, resumed_eval_s = result.steps, result.eval_s
    # A resumed run's curves restart after its checkpoint: the later points that the
    # interrupted process had written are dropped.
    loggers = RunLoggers(cfg, out, first_step, backend, distributed) if writes else NoLoggers()
    start = time.time()
    startup_s = start - startup_origin()
    try:
        fit(
            backend, sampler, loop_schedule, loggers, cfg.optimized_metric, result,
            progress=cfg.progress and writes,  # rank 0's bar only
            eval_hooks=hooks if ranks is None else [agreement.RankZeroHooks(hooks, writes)],
            checkpoints=checkpoints, stop=stop,
        )  # fmt: skip
        wall = time.time() - start
        loggers.finish(result.steps, data)
    except KeyboardInterrupt:
        loggers.close("interrupted")
        raise
    except Exception:
        loggers.close("failed")
        raise
    loggers.close(result.status)
    if not writes:
        return None
    compile_s = getattr(backend, "compile_s", 0.0)  # torch.compile's first steps (compile=true)
    timing = record.run_timing(
        result, first_step, resumed_eval_s, wall, startup_s, compile_s, threads
    )
    written = record.write_metrics(out, cfg, result, timing, distributed)
    loggers.record_written()  # MLflow's copy of metrics.json and the best checkpoint
    log.info("%s", record.finished_line(result, first_step, wall, startup_s, out))
    return Run.from_record(out, cfg, written, data)


@hydra.main(version_base="1.3", config_path="pkg://dlexp.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run_job(objective, cfg, prog="dlexp-train")


def main() -> None:
    """`dlexp-train [overrides]`: user errors, Hydra's included, are one line and exit status 2.
    Under torchrun each rank runs it: rank 0 runs Hydra, the others follow (run_cli_as_rank)."""
    ranks = process_group.environment_ranks()
    if ranks is None:
        run_cli(_hydra_main, prog="dlexp-train")
    else:
        run_cli_as_rank(_hydra_main, "dlexp-train", ranks, _follow)
