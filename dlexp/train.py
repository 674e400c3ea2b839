"""The one train entrypoint: `train(cfg) -> objective`, and `main()`, the `dlexp-train` command."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from dlexp.build import build_parts, make_backend
from dlexp.cli import failure_reason, run_cli, run_job
from dlexp.cores import share_cores
from dlexp.data import BatchSampler, load_cifar10
from dlexp.errors import ConfigError
from dlexp.loop import EarlyStopping, FitResult, LoopSchedule, fit
from dlexp.tensorboard_log import TensorBoardLogger
from dlexp.timing import mark_run_end, startup_origin

log = logging.getLogger("dlexp")


def _output_dir(cfg: DictConfig) -> Path:
    try:
        out = Path(cfg.output_dir)
    except Exception:  # an unresolvable ${hydra:...} outside a Hydra app
        raise ConfigError(
            "output_dir is unset: pass output_dir=... when calling train() directly"
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    return out


def _load_data(cfg: DictConfig):
    d = cfg.data
    return load_cifar10(
        d.root,
        download=d.download,
        validation_size=d.validation_size,
        preprocess=d.preprocess,
        url=d.url,
        md5=d.md5,
        cache_dir="default" if d.cache else None,
        train_subset=d.train_subset,
        eval_subset=d.eval_subset,
    )


def flat_hparams(cfg: DictConfig) -> dict:
    """The resolved config flattened to dotted keys with TensorBoard-friendly values."""
    flat: dict = {}

    def walk(node, prefix):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{name}.")
            else:
                flat[name] = value if isinstance(value, (bool, int, float, str)) else str(value)

    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("output_dir", None)
    walk(container, "")
    return flat


def objective(result: FitResult, metric: str) -> float | None:
    """What a search optimises: the best value of `metric` at an evaluation; a train metric
    (the course protocol has no validation split) is taken at the last logged step."""
    value = result.best.get(metric, result.final.get(metric))
    return None if value is None else float(value)


def write_metrics(out: Path, cfg: DictConfig, result: FitResult, timing: dict) -> dict:
    """metrics.json: how the run ended, its objective, final and best metrics, timing."""
    record = {
        "status": result.status,
        **({"reason": result.reason} if result.reason else {}),
        "steps": result.steps,
        "optimized_metric": cfg.optimized_metric,
        "objective": objective(result, cfg.optimized_metric),
        "final": result.final,
        "best": result.best,
        "timing": timing,
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _record_failure(cfg: DictConfig, result: FitResult, err: Exception) -> None:
    """A failed run still leaves metrics.json: status failed, the one-line reason, its step."""
    try:
        out = Path(cfg.output_dir)
    except Exception:  # train() called without an output_dir: nowhere to write
        return
    if out.is_dir():
        result.status, result.reason = "failed", failure_reason(err)
        write_metrics(out, cfg, result, timing={})


def seed_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for model init and batch order, both derived from `seed`."""
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    model_seq, sampler_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(model_seq), np.random.default_rng(sampler_seq)


def train(cfg: DictConfig) -> float | None:
    """Seed, build model/optimizer/schedule, then data and backend; run the loop.

    Returns the objective (see `objective`), or None when a pruner stopped the run. A failure
    is recorded in metrics.json (status failed) and raised.
    """
    result = FitResult()
    try:
        return _run(cfg, result)
    except Exception as err:
        _record_failure(cfg, result, err)
        raise
    finally:
        mark_run_end()  # even after a failure: a sweep's next job starts its clock here


def _eval_hooks(cfg: DictConfig) -> list:
    """Early stopping and a search trial's pruning report, each when configured."""
    hooks = []
    if cfg.early_stop.patience is not None:
        hooks.append(EarlyStopping(cfg.optimized_metric, cfg.early_stop.patience))
    if cfg.search.trial is not None:
        from dlexp.search.trial_report import TrialReport  # imports Optuna: only in a search

        hooks.append(TrialReport.from_config(cfg.search, cfg.optimized_metric))
    return hooks


def _run(cfg: DictConfig, result: FitResult) -> float | None:
    random.seed(cfg.seed)
    model_rng, sampler_rng = seed_generators(cfg.seed)
    # Everything that can refuse the config is built before the data is read.
    parts = build_parts(cfg, model_rng)
    hooks = _eval_hooks(cfg)
    loop_schedule = LoopSchedule(
        cfg.max_steps, cfg.eval_freq, cfg.log_freq, cfg.batch_size, cfg.eval_batch_size
    )
    out = _output_dir(cfg)
    data = _load_data(cfg)
    backend = make_backend(parts, data, cfg)
    threads = share_cores()
    sampler = BatchSampler(len(data.train), cfg.batch_size, sampler_rng)
    logger = TensorBoardLogger(out)
    start = time.time()
    startup_s = start - startup_origin()
    try:
        fit(
            backend,
            sampler,
            loop_schedule,
            logger,
            cfg.optimized_metric,
            result,
            progress=cfg.progress,
            eval_hooks=hooks,
        )
        wall = time.time() - start
        logger.hparams(flat_hparams(cfg), sorted(result.final))
    finally:
        logger.close()
    timing = {
        "wall_s": round(wall, 3),
        "startup_s": round(startup_s, 3),
        "eval_s": round(result.eval_s, 3),
        "steps_per_s": round(result.steps / (wall - result.eval_s), 2),  # training steps only
        "threads": threads,  # CPU threads this job used (a parallel sweep splits the cores)
    }
    record = write_metrics(out, cfg, result, timing)
    final = result.final
    shown = " | ".join(
        f"{k} {final[k]:.4f}" for k in ("val/accuracy", "test/accuracy") if k in final
    )
    ended = "" if result.status == "completed" else f" ({result.status}: {result.reason})"
    log.info(
        "%d steps in %.1fs (start-up %.1fs)%s | %s | %s",
        result.steps, wall, startup_s, ended, shown, out,
    )  # fmt: skip
    return None if result.status == "pruned" else record["objective"]


@hydra.main(version_base="1.3", config_path="pkg://dlexp.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run_job(train, cfg, prog="dlexp-train")


def main() -> None:
    """`dlexp-train [overrides]`: user errors, Hydra's included, are one line and exit status 2."""
    run_cli(_hydra_main, prog="dlexp-train")
