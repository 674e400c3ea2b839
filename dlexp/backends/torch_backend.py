"""The torch backend: the whole dataset lives on the device; batches are indexed there."""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from torch.nn import functional

from dlexp.backends import BackendOptions
from dlexp.backends.torch_device import (
    prepare_device,
    resolve_precision,
    synchronize,
    use_persistent_inductor_cache,
)
from dlexp.backends.torch_ranks import (
    data_parallel,
    every_rank_rng,
    global_sums,
    global_train_stats,
    rank_slice,
    rng_for_rank,
)
from dlexp.backends.torch_schedules import make_torch_scheduler as make_scheduler
from dlexp.backends.training_state import load_training_state, training_state
from dlexp.data.augment import draw_augment
from dlexp.data.load import copy_on_write
from dlexp.data.prepare import CIFAR10Data
from dlexp.data.sampler import BatchIndices
from dlexp.distributed.collectives import rank_zero_buffers, rows_of_every_rank, shard
from dlexp.nn.augment import augment_batch
from dlexp.numpy_nn.optim import OPTIMIZERS as NUMPY_OPTIMIZERS

# numpy_nn.OPTIMIZERS is the one table of the optim group; torch trains with its namesakes
OPTIMIZERS = {name: getattr(torch.optim, cls.__name__) for name, cls in NUMPY_OPTIMIZERS.items()}
TIMED_STEPS = 5  # compiled runs time (and sync) their first steps to report compile_s
__all__ = [
    "OPTIMIZERS", "Backend", "make_scheduler", "prepare_device", "resolve_precision",
    "use_persistent_inductor_cache",
]  # fmt: skip


class Backend:
    """Trains an nn.Module with cross-entropy; no DataLoader, no per-step host copy or sync.

    compile=True compiles forward + loss (and, through AOTAutograd, their backward) with
    torch.compile; on CUDA in mode reduce-overhead, which replays the step as CUDA graphs. The
    optimizer step and evaluation stay eager. `compile_s` is the seconds the first steps took
    beyond normal ones (0.0 when not compiled).

    On several ranks (`options.ranks`), the model trains in DistributedDataParallel, each rank
    on its slice of every global batch, and evaluation is sharded; the logged and evaluated
    figures are the ranks' sums (dlexp.backends.torch_ranks).
    """

    kind = "torch"  # names the checkpoint format (dlexp.run.checkpoint_file)

    def __init__(self, model, optimizer, scheduler, data: CIFAR10Data, options: BackendOptions):
        device, channels_last, compile = options.device, options.channels_last, options.compile
        # channels_last: conv weights and images NHWC in memory (MLP weights are 2-D: untouched)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device).train()
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer, self.device = optimizer, device
        self.ranks = options.ranks  # None: one process
        # what trains: the model itself, or on several ranks the model in DDP
        self._net = self.model if self.ranks is None else data_parallel(self.model, device)
        self.augment, self.augment_rng = options.augment, options.augment_rng
        # label smoothing is for the training loss only; evaluation reports plain cross-entropy
        self.label_smoothing = options.label_smoothing
        self.scheduler = scheduler
        self.eval_batch_size = options.eval_batch_size
        self.splits = {
            name: (self._to_device(split.images), torch.from_numpy(split.labels).to(device))
            for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
        }
        self.eval_splits = tuple(s for s in ("val", "test") if len(self.splits[s][1]))
        self.precision = resolve_precision(options.precision, device)
        self._forward_loss = self._compiled(self._eager_forward_loss) if compile else None
        self.compile_s = 0.0
        self._step_times: list[float] | None = [] if compile else None  # until TIMED_STEPS
        self._host_permutation: np.ndarray | None = None
        self._permutation: torch.Tensor | None = None
        self._loss_sum = torch.zeros((), device=device)
        self._correct = torch.zeros((), device=device, dtype=torch.int64)
        self._seen = 0
        self.last_predictions: dict[str, np.ndarray] = {}  # split -> labels its last eval chose

    def _to_device(self, images: np.ndarray) -> torch.Tensor:
        # The data cache's images are read-only memory maps of only the images the run keeps
        # (its subsets are views). A CPU tensor shares them, remapped copy-on-write: torch may
        # write to its tensors, and a write then stays private to this process; no copy of
        # the split is made. Another device copies the view's images once, to itself.
        if images.flags.writeable:
            tensor = torch.from_numpy(images)
        elif self.device.type == "cpu":
            private = copy_on_write(images)
            tensor = torch.from_numpy(images.copy() if private is None else private)
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The given NumPy array is not writable")
                tensor = torch.from_numpy(images)
        tensor = tensor.to(self.device)
        return tensor.contiguous(memory_format=self.memory_format) if tensor.dim() == 4 else tensor

    def _compiled(self, fn):
        """torch.compile(fn): CUDA graphs on CUDA; the FX/kernel cache persists across runs.

        The step function is compiled, not the module, so state_dict keys stay unprefixed.
        """
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        return torch.compile(fn, mode=mode, dynamic=False)

    def _autocast(self) -> torch.autocast:
        """bf16 autocast, or a disabled one (built inline: torch.compile traces it)."""
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bf16")

    def _indices(self, batch: BatchIndices) -> torch.Tensor:
        if batch.permutation is not self._host_permutation:  # once per epoch
            self._host_permutation = batch.permutation
            self._permutation = torch.from_numpy(batch.permutation).to(self.device)
        return self._permutation[batch.start : batch.stop]

    def _eager_forward_loss(self, x: torch.Tensor, y: torch.Tensor):
        """(training loss, number correct) of one batch; what compile=True compiles."""
        with self._autocast():
            logits = self._net(x)
            loss = functional.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        return loss, (logits.argmax(dim=1) == y).sum()

    def train_step(self, batch: BatchIndices) -> None:
        if self._step_times is None:
            return self._train_step(batch)
        start = time.perf_counter()  # compiled: the first steps compile, then run normally
        self._train_step(batch)
        synchronize(self.device)
        self._step_times.append(time.perf_counter() - start)
        normal = min(self._step_times)
        self.compile_s = sum(t - normal for t in self._step_times)
        if len(self._step_times) == TIMED_STEPS:
            self._step_times = None  # no more syncs

    def _train_step(self, batch: BatchIndices) -> None:
        images, labels = self.splits["train"]
        indices = self._indices(batch)
        augment = None
        if self.augment != "none":  # drawn on the host (a few bytes), applied on the device
            augment = draw_augment(self.augment_rng, len(indices), self.augment)
        if self.ranks is not None:  # this rank's slice of the global batch
            indices, augment = rank_slice(indices, augment, self.ranks)
        x, y = images[indices], labels[indices]
        if augment is not None:
            x = augment_batch(x, augment)
        x = x.contiguous(memory_format=self.memory_format)  # a no-op unless indexing changed it
        self.optimizer.zero_grad(set_to_none=True)  # before forward: CUDA graphs reuse memory
        if self._forward_loss is None:
            loss, correct = self._eager_forward_loss(x, y)
        else:
            if self.device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()  # a new iteration of the graphs
            loss, correct = self._forward_loss(x, y)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        with torch.no_grad():
            self._loss_sum += loss.detach() * len(y)
            self._correct += correct
        self._seen += len(y)

    def pop_train_stats(self) -> tuple[float, float]:
        loss_sum, correct, seen = self._loss_sum, self._correct, self._seen
        if self.ranks is not None:  # the global batches'
            loss_sum, correct, seen = global_train_stats(loss_sum, correct, seen)
        stats = (loss_sum.item() / seen, correct.item() / seen)
        self._loss_sum.zero_()
        self._correct.zero_()
        self._seen = 0
        return stats

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """On several ranks, each evaluates its shard with rank 0's model, and the sums (and
        predictions) are gathered: every image counts once."""
        images, labels = self.splits[split]
        start, stop = 0, len(labels)
        if self.ranks is not None:
            start, stop = shard(self.ranks.rank, self.ranks.world_size, len(labels))
            rank_zero_buffers(self.model)  # the running statistics rank 0 saves
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        predicted = torch.empty_like(labels[start:stop])
        for first in range(start, stop, self.eval_batch_size):
            last = min(stop, first + self.eval_batch_size)
            x, y = images[first:last], labels[first:last]  # a slice keeps channels_last
            with self._autocast():
                logits = self.model(x).float()
            loss_sum += functional.cross_entropy(logits, y, reduction="sum")
            predicted[first - start : last - start] = logits.argmax(dim=1)
        self.model.train()
        correct = (predicted == labels[start:stop]).sum()
        if self.ranks is not None:
            loss_sum, correct = global_sums(loss_sum, correct)
            predicted = rows_of_every_rank(predicted, len(labels))
        self.last_predictions[split] = predicted.cpu().numpy()
        return {"loss": loss_sum.item() / len(labels), "accuracy": correct.item() / len(labels)}

    def learning_rate(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def parameter_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """name -> (values, gradient of the last step or None), for weight histograms."""
        return {
            name: (
                p.detach().float().cpu().numpy(),
                None if p.grad is None else p.grad.detach().float().cpu().numpy(),
            )
            for name, p in self.model.named_parameters()
        }

    def state_dict(self) -> dict:
        """Parameters and buffers, optimizer, schedule, unpopped train stats and torch's RNGs.

        On several ranks, every rank calls it at once (a collective): the train stats are the
        ranks' sums, `rng` rank 0's generators and `rank_rng` every rank's."""
        stats = (self._loss_sum, self._correct, self._seen)
        if self.ranks is not None:
            stats = global_train_stats(*stats)
        state = {
            **training_state(self.model, self.optimizer, self.scheduler, *stats),
            "rng": self._rng_state(),  # dropout draws from the device's generator
        }
        if self.ranks is not None:
            state["rank_rng"] = every_rank_rng(state["rng"])
        return state

    def _rng_state(self) -> dict:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            state["mps"] = torch.mps.get_rng_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict(); tensors may come on the CPU, they are copied to the device."""
        # the optimizer's state moves to its parameters' device
        load_training_state(state, self.model, self.optimizer, self.scheduler)
        stats = state["train_stats"]
        self._loss_sum.copy_(stats["loss_sum"])
        self._correct.copy_(stats["correct"])
        self._seen = int(stats["seen"])
        if self.ranks is not None and self.ranks.rank > 0:  # rank 0 carries the ranks' sums
            self._loss_sum.zero_()
            self._correct.zero_()
            self._seen = 0
        self._host_permutation = self._permutation = None  # re-upload the sampler's next one
        rng = rng_for_rank(state, self.ranks)
        if rng is None:
            return
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        if "mps" in rng and self.device.type == "mps":
            torch.mps.set_rng_state(rng["mps"])
