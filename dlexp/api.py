"""dlexp from Python: `compose` a config as `dlexp-train` does, train it (`dlexp.train`, in
dlexp.training), `load_run` a run folder. A `Run` is a run's record and config, its trained model
(`model()`) and its class probabilities for new images (`predict()`). docs/python_api.md shows them.
"""

from __future__ import annotations

import contextlib
import copy
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import numpy as np
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from dlexp.backends.numpy_backend import flatten
from dlexp.build import build_parts, load_run_data, make_backend, seed_generators
from dlexp.config import register_config
from dlexp.data import BatchSampler, CIFAR10Data, Split, preprocess_images
from dlexp.data.prepare import IMAGE_SHAPE
from dlexp.errors import ConfigError, DataError, DlexpError, one_line, user_errors
from dlexp.run.checkpoint_file import load_run_state
from dlexp.run.checkpoints import BEST, LAST, checkpoint_folder, find_checkpoint
from dlexp.run.folder import read_saved_config
from dlexp.run.record import read_job_record
from dlexp.run.resume import run_dir_of

IMAGE_HWC = (32, 32, 3)  # one image as predict() takes it: height, width, then R, G, B
CHECKPOINTS = {"best": (BEST, LAST), "last": (LAST,)}  # which -> the files tried, in order
# compose()'s overrides ({"task": [...], "hydra": [...]}) by run folder, until train() saves
# them in the folder's .hydra/ as Hydra saves a command's.
_composed: dict[str, dict[str, list[str]]] = {}


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """conf/train.yaml with `overrides`, composed as `dlexp-train` composes it.

    `output_dir` is a fresh run folder, the command's hydra.run.dir:
    outputs/<task_name>/runs/<date>_<time>_<microseconds>, under the working directory. A user
    error (an unknown group option or key, a wrong type) is a ConfigError of one line.
    """
    register_config()  # the schemas and resolvers conf/train.yaml needs
    try:
        with _config_module():
            cfg = hydra.compose("train", overrides=list(overrides), return_hydra_config=True)
        run_dir = str(cfg.hydra.run.dir)  # resolved here: the timestamp is this call's
        recorded = OmegaConf.to_container(cfg.hydra.overrides)
    except DlexpError:
        raise
    except user_errors() as err:
        raise ConfigError(one_line(err)) from None
    with open_dict(cfg):
        del cfg["hydra"]  # a job's config holds no hydra node
    cfg.output_dir = run_dir
    _composed[run_dir] = recorded
    return cfg


def composed_overrides(cfg: DictConfig) -> list[str] | None:
    """The overrides compose() made `cfg` with (None for a config made otherwise)."""
    out = OmegaConf.select(cfg, "output_dir", throw_on_resolution_failure=False)
    return _composed.get(str(out), {}).get("task")


def _config_module():
    """Hydra's compose API on dlexp's configs (the package dlexp.conf)."""
    return hydra.initialize_config_module("dlexp.conf", version_base="1.3")


@contextlib.contextmanager
def hydra_initialized():
    """Hydra's compose API ready: as a Hydra app left it, else on dlexp's configs."""
    if GlobalHydra.instance().is_initialized():
        yield
    else:
        with _config_module():
            yield


def save_config(out: Path, cfg: DictConfig) -> None:
    """What Hydra saves in .hydra/ before a job, when Hydra did not (a config from compose()):
    config.yaml, and compose()'s overrides in overrides.yaml and hydra.yaml, so that
    dlexp-report, dlexp-eval, resume= and load_run read the folder as a command's run. A file
    that is there already (Hydra's, or a resumed run's) is kept."""
    folder = out / ".hydra"
    files = {"config.yaml": OmegaConf.to_yaml(cfg)}
    overrides = _composed.pop(str(cfg.output_dir), None)
    if overrides is not None:  # a cfg composed otherwise has no overrides on record
        files["overrides.yaml"] = yaml.safe_dump(overrides["task"])
        files["hydra.yaml"] = yaml.safe_dump({"hydra": {"overrides": overrides}})  # the command
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if not (folder / name).exists():
            (folder / name).write_text(text)


def load_run(path: str | Path) -> Run:
    """A run folder (or a checkpoint file in one) read back: its config and metrics.json."""
    folder = run_dir_of(path)
    config = read_saved_config(folder)
    if config is None:
        why = "does not exist" if not folder.exists() else "is no dlexp run (no .hydra/config.yaml)"
        raise DlexpError(f"{folder} {why}")
    return Run.from_record(folder, config, read_job_record(folder))


@dataclass
class _RunData:
    """What model() and predict() need of a run's data, kept so that it is read once."""

    preprocess: str
    stats: dict[str, np.ndarray]  # CIFAR10Data.stats: the training split's statistics
    n_train: int  # images in the training split: a checkpoint's sampler must match it


@dataclass
class Run:
    """A run: its folder, how it ended and its metrics (metrics.json), its config."""

    folder: Path
    config: DictConfig = field(repr=False)  # long: print(OmegaConf.to_yaml(run.config))
    status: str  # completed, failed, pruned, early_stopped, interrupted; running (no record yet)
    reason: str  # why a run did not complete; "" when it did
    steps: int
    objective: float | None  # what a sweeper optimises: the best optimized_metric
    final: dict  # each metric at the last evaluation: {"val/accuracy": 0.41, ...}
    best: dict  # each metric at the best evaluation, and its "best_step"
    timing: dict  # wall_s, startup_s, eval_s, steps_per_s, threads, compile_s
    _data: _RunData | None = field(default=None, init=False, repr=False, compare=False)
    # predict()'s models, built once per (which, device); model() gives the caller a fresh one
    _predictors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_record(
        cls, folder: Path, config: DictConfig, record: dict, data: CIFAR10Data | None = None
    ) -> Run:
        """The run of a metrics.json record; `data`, the run's own, saves reading it again."""
        run = cls(
            Path(folder), config, record.get("status", "failed"), record.get("reason", ""),
            record.get("steps", 0), record.get("objective"), record.get("final") or {},
            record.get("best") or {}, record.get("timing") or {},
        )  # fmt: skip
        if data is not None:
            run._data = _RunData(data.preprocess, data.stats, len(data.train))
        return run

    def checkpoint(self, which: str = "best") -> Path:
        """checkpoints' `best` (`last` for a run that kept no best, e.g. without validation
        data) or `last`."""
        if which not in CHECKPOINTS:
            raise ConfigError(f"which must be one of {', '.join(CHECKPOINTS)}, got {which!r}")
        found = [find_checkpoint(self.folder, name) for name in CHECKPOINTS[which]]
        found = [path for path in found if path is not None]  # an older dlexp's *.ckpt too
        if not found:
            folder = checkpoint_folder(self.folder)
            raise DlexpError(f"{self.folder} has no {which} checkpoint in {folder}")
        return found[0]

    def model(self, which: str = "best", device: str = "cpu"):
        """The trained model of checkpoint(which) on `device`: a torch nn.Module in eval mode, or
        the dlexp.numpy_nn model. Each call builds a fresh one and loads the checkpoint (the
        first call also reads the run's data once, for the size of its training split)."""
        checkpoint = self.checkpoint(which)
        cfg = copy.deepcopy(self.config)
        # a model to use, not a run to continue: no compiling, no global deterministic mode
        cfg.device, cfg.compile, cfg.deterministic = device, False, False
        data = self._run_data()
        model_rng, sampler_rng = seed_generators(cfg.seed)
        with _callers_random_state_kept():
            parts = build_parts(cfg, model_rng)
            backend = make_backend(parts, _without_images(data), cfg)
            sampler = BatchSampler(data.n_train, cfg.batch_size, sampler_rng)
            load_run_state(checkpoint, backend, sampler)
        if callable(getattr(backend.model, "eval", None)):  # torch: dropout off, running stats
            backend.model.eval()
        return backend.model

    def predict(self, images: np.ndarray, which: str = "best", device: str = "cpu") -> np.ndarray:
        """Class probabilities (N, n_classes), float64 rows that sum to 1, of uint8 images
        (N, 32, 32, 3) (height, width, R G B), preprocessed as the run's own splits were.

        The first call reads the run's data for its training statistics (memory maps when
        data.cache is on, else the whole preparation) and builds the model (model()); later
        calls reuse both and cost a float32 forward pass, eval_batch_size images at a time.
        """
        x = preprocess_images(_planes(images), self._run_data().stats)  # (N, 3, 32, 32)
        key = (which, device)
        if key not in self._predictors:
            self._predictors[key] = self.model(which, device)
        logits = _logits(self._predictors[key], x, self.config.eval_batch_size)
        return _softmax(logits)

    def _run_data(self) -> _RunData:
        if self._data is None:
            data = load_run_data(self.config)
            self._data = _RunData(data.preprocess, data.stats, len(data.train))
        return self._data


def _without_images(data: _RunData) -> CIFAR10Data:
    """Empty splits: a backend built to hold a checkpoint's model holds no dataset."""
    empty = Split(np.empty((0, *IMAGE_SHAPE), np.float32), np.empty(0, np.int64))
    return CIFAR10Data(empty, empty, empty, data.preprocess, data.stats)


@contextlib.contextmanager
def _callers_random_state_kept():
    """Building seeds torch, and loading a checkpoint restores the run's generators (Python's,
    torch's), as a resume must; the caller's own generators stay as they were."""
    python_state = random.getstate()
    torch = sys.modules.get("torch")  # a caller who has not loaded torch has no torch state
    forked = contextlib.nullcontext()
    if torch is not None:
        forked = torch.random.fork_rng(devices=range(torch.cuda.device_count()))
    try:
        with forked:
            yield
    finally:
        random.setstate(python_state)


def _planes(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 32, 32, 3) -> (N, 3072) in R, G, B planes, the layout of CIFAR-10's files."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_HWC:
        raise DataError(
            f"predict takes uint8 images (N, 32, 32, 3), got {images.dtype} {images.shape}"
        )
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)


def _logits(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's logits (N, n_classes) for preprocessed images x (N, 3, 32, 32)."""
    starts = range(0, max(len(x), 1), batch_size)  # one (empty) batch for no images
    if callable(getattr(model, "forward_logits", None)):  # a dlexp.numpy_nn model
        dtype = model.linears[0].params["weight"].dtype
        batches = [
            model.forward_logits(flatten(x[i : i + batch_size]).astype(dtype)) for i in starts
        ]
        return np.concatenate(batches)
    import torch  # a torch model: torch is loaded already

    device = next(model.parameters()).device
    with torch.inference_mode():
        batches = [
            model(torch.from_numpy(x[i : i + batch_size]).to(device)).float().cpu().numpy()
            for i in starts
        ]
    return np.concatenate(batches)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, shifted by each row's max so that exp cannot overflow."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)
