"""The one train entrypoint: `train(cfg) -> Run`; `objective(cfg)`, what Hydra's sweepers get back;
and `main()`, the `dlexp-train` command."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dlexp.api import Run, composed_overrides, hydra_initialized, save_config
from dlexp.build import (
    augment_generator,
    build_parts,
    load_run_data,
    make_backend,
    seed_generators,
)
from dlexp.cli import run_cli, run_job
from dlexp.data import BatchSampler
from dlexp.errors import ConfigError
from dlexp.loop import EarlyStopping, FitResult, LoopSchedule, NotLearning, fit
from dlexp.run.checkpoints import LAST, RunCheckpoints, find_checkpoint
from dlexp.run.cores import share_cores
from dlexp.run.environment import write_environment
from dlexp.run.loggers import RunLoggers
from dlexp.run.record import read_job_record, record_failure, write_metrics
from dlexp.run.resume import resumed_config, run_dir_of
from dlexp.run.signals import RunInterrupted, StopRequests
from dlexp.run.timing import mark_run_end, startup_origin

log = logging.getLogger("dlexp")


def _output_dir(cfg: DictConfig) -> Path:
    try:
        out = Path(cfg.output_dir)
    except Exception:  # an unresolvable ${hydra:...} outside a Hydra app
        raise ConfigError(
            "output_dir is unset: compose the config with dlexp.compose(), or pass output_dir=..."
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    return out


def train(cfg: DictConfig) -> Run:
    """Seed, build model/optimizer/schedule, then data and backend; run the loop.

    Returns the finished run (its folder, status, metrics and objective; `Run.model()` and
    `Run.predict()`). A failure is recorded in metrics.json (status failed) and raised; a stop
    signal is recorded (status interrupted) after a checkpoint, and raised as RunInterrupted.
    """
    result = FitResult()
    try:
        with StopRequests() as stop:  # from the start: a signal while loading is honoured too
            run = _run(cfg, result, stop)
    except Exception as err:
        record_failure(cfg, result, err)
        raise
    except KeyboardInterrupt as err:  # a second stop signal: no checkpoint of this step
        result.status, result.reason = "interrupted", str(err) or "aborted"
        record_failure(cfg, result, None)
        raise
    finally:
        mark_run_end()  # even after a failure: a sweep's next job starts its clock here
    if stop.requested:  # also when the signal came during the last step: the command stops
        raise _interrupted(cfg, result, stop)
    return run


def objective(cfg: DictConfig) -> float | None:
    """`train(cfg)`'s objective (see `dlexp.run.record.objective`), what a sweeper optimises;
    None when a pruner stopped the run."""
    run = train(cfg)
    return None if run.status == "pruned" else run.objective


def _interrupted(cfg: DictConfig, result: FitResult, stop: StopRequests) -> RunInterrupted:
    """The one line a stopped run ends with, and its exit status (128 + the signal)."""
    if result.status == "interrupted":
        out = Path(cfg.output_dir) if cfg.resume is None else run_dir_of(cfg.resume)
        message = f"{result.reason}; resume with: dlexp-train resume={out}"
    else:  # the signal came during the last step, which completed the run
        message = f"{stop.signal_name()} received after the last step: the run is {result.status}"
    interrupted = RunInterrupted(message, stop.signal)
    interrupted.previous_handler = stop.previous_handler()  # submitit's, which requeues
    return interrupted


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
        read_job_record(out).get("status") == "interrupted"
    )  # killed, or stopped by a signal
    if last is not None and unfinished:
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.resume = str(last)
    return cfg


def _run(cfg: DictConfig, result: FitResult, stop: StopRequests) -> Run:
    cfg = _checkpoint_to_continue(cfg)
    random.seed(cfg.seed)
    model_rng, sampler_rng = seed_generators(cfg.seed)
    # Everything that can refuse the config is built before the data is read.
    parts = build_parts(cfg, model_rng)
    hooks = _eval_hooks(cfg)
    loop_schedule = LoopSchedule(
        cfg.max_steps,
        cfg.eval_freq,
        cfg.log_freq,
        cfg.batch_size,
        cfg.eval_batch_size,
        cfg.checkpoint.every,
    )
    out = _output_dir(cfg)
    save_config(out, cfg)  # what Hydra saves before the job, for a config composed in Python
    data = load_run_data(cfg)
    augment_rng = augment_generator(cfg.seed)
    backend = make_backend(parts, data, cfg, augment_rng)
    threads = share_cores()
    sampler = BatchSampler(len(data.train), cfg.batch_size, sampler_rng)
    generators = {"model": model_rng, "augment": augment_rng}
    every = loop_schedule.checkpoint_interval
    checkpoints = RunCheckpoints(out, every, cfg.max_steps, backend, sampler, generators, hooks)
    if cfg.resume is not None:
        checkpoints.restore(Path(cfg.resume), result)
        log.info("resuming %s from step %d", out, result.steps)
    write_environment(out, parts.device, threads)  # once a resume can no longer be refused
    first_step, resumed_eval_s = result.steps, result.eval_s
    # A resumed run's curves restart after its checkpoint: the later points that the
    # interrupted process had written are dropped.
    loggers = RunLoggers(cfg, out, first_step, backend)
    start = time.time()
    startup_s = start - startup_origin()
    try:
        fit(
            backend,
            sampler,
            loop_schedule,
            loggers,
            cfg.optimized_metric,
            result,
            progress=cfg.progress,
            eval_hooks=hooks,
            checkpoints=checkpoints,
            stop=stop,
        )
        wall = time.time() - start
        loggers.finish(result.steps, data)
    except KeyboardInterrupt:
        loggers.close("interrupted")
        raise
    except Exception:
        loggers.close("failed")
        raise
    loggers.close(result.status)
    eval_s = result.eval_s - resumed_eval_s
    compile_s = getattr(backend, "compile_s", 0.0)  # torch.compile's first steps (compile=true)
    timing = {
        "wall_s": round(wall, 3),
        "startup_s": round(startup_s, 3),
        "eval_s": round(result.eval_s, 3),
        # training steps of this process only (a resumed run counts from its checkpoint)
        "steps_per_s": round((result.steps - first_step) / max(wall - eval_s - compile_s, 1e-9), 2),
        "threads": threads,  # CPU threads this job used (a parallel sweep splits the cores)
        "compile_s": round(compile_s, 3),  # in wall_s, not in steps_per_s
    }
    record = write_metrics(out, cfg, result, timing)
    loggers.record_written()  # MLflow's copy of metrics.json and the best checkpoint
    final = result.final
    shown = " | ".join(
        f"{k} {final[k]:.4f}" for k in ("val/accuracy", "test/accuracy") if k in final
    )
    ended = "" if result.status == "completed" else f" ({result.status}: {result.reason})"
    ran = result.steps - first_step  # this process's steps: a resume ran from its checkpoint on
    steps = (
        f"{ran} steps"
        if not first_step
        else f"{ran} steps (resumed: {first_step + 1}-{result.steps})"
    )
    log.info("%s in %.1fs (start-up %.1fs)%s | %s | %s", steps, wall, startup_s, ended, shown, out)
    return Run.from_record(out, cfg, record, data)


@hydra.main(version_base="1.3", config_path="pkg://dlexp.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run_job(objective, cfg, prog="dlexp-train")


def main() -> None:
    """`dlexp-train [overrides]`: user errors, Hydra's included, are one line and exit status 2."""
    run_cli(_hydra_main, prog="dlexp-train")
