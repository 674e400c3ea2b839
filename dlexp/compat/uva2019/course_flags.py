"""The course's train_*.py flags, translated into overrides for the one dlexp-train entrypoint."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from dlexp.overrides import COURSE_FLAGS, override_key, quote

DATA_DIR_DEFAULT = "./cifar10/cifar-10-batches-py"  # the course scripts' default


@dataclass(frozen=True)
class CourseScript:
    """One course script: the dlexp preset it runs and the course's flag defaults."""

    name: str
    preset: str  # experiment=<preset>: the seed's setup on all 50 000 images, as the course ran
    learning_rate: float
    max_steps: int
    batch_size: int
    eval_freq: int
    mlp: bool  # has --dnn_hidden_units and --neg_slope


NUMPY_MLP = CourseScript("train_mlp_numpy", "seed_numpy_mlp", 2e-3, 1500, 200, 100, mlp=True)
TORCH_MLP = CourseScript("train_mlp_pytorch", "seed_torch_mlp", 2e-3, 1500, 200, 100, mlp=True)
CONVNET = CourseScript("train_convnet_pytorch", "seed_convnet", 1e-4, 5000, 32, 500, mlp=False)


def hidden_units(text: str) -> list[int]:
    """'100,100' -> [100, 100]; '' -> [] (no hidden layer), as the course parsed it."""
    try:
        return [int(unit) for unit in text.split(",")] if text.strip() else []
    except ValueError:
        message = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def build_parser(script: CourseScript) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m dlexp.compat.uva2019.{script.name}",
        description=f"The course's {script.name}.py, run by dlexp-train "
        f"experiment={script.preset}.",
        epilog="Any key=value after the flags is passed to dlexp-train as a Hydra override "
        "(e.g. device=cpu); see docs/course.md.",
    )
    add = parser.add_argument
    if script.mlp:
        add("--dnn_hidden_units", type=hidden_units, default="100",
            help="comma separated number of units in each hidden layer")  # fmt: skip
    add("--learning_rate", type=float, default=script.learning_rate, help="learning rate")
    add("--max_steps", type=int, default=script.max_steps, help="number of steps to run trainer")
    add("--batch_size", type=int, default=script.batch_size, help="batch size to run trainer")
    add("--eval_freq", type=int, default=script.eval_freq, help="evaluate every this many steps")
    if script.mlp:
        add("--neg_slope", type=float, default=0.02, help="negative slope of the LeakyReLU")
    add("--data_dir", type=str, default=DATA_DIR_DEFAULT, help="the cifar-10-batches-py folder")
    return parser


def flag_overrides(script: CourseScript, flags: argparse.Namespace) -> list[str]:
    """The parsed course flags as dlexp-train overrides."""
    overrides = [f"experiment={script.preset}"]
    if script.mlp:
        hidden = ",".join(map(str, flags.dnn_hidden_units))
        overrides += [
            f"{COURSE_FLAGS['--dnn_hidden_units']}=[{hidden}]",
            f"{COURSE_FLAGS['--neg_slope']}={flags.neg_slope!r}",
        ]
    return [
        *overrides,
        f"{COURSE_FLAGS['--learning_rate']}={flags.learning_rate!r}",
        f"{COURSE_FLAGS['--max_steps']}={flags.max_steps}",
        f"{COURSE_FLAGS['--batch_size']}={flags.batch_size}",
        f"{COURSE_FLAGS['--eval_freq']}={flags.eval_freq}",
        f"{COURSE_FLAGS['--data_dir']}={quote(flags.data_dir)}",
    ]


def _override_key(arg: str) -> str | None:
    if arg.startswith("-") or "=" not in arg:
        return None  # a Hydra flag such as -m, or a value of one
    return override_key(arg)


def merge(from_flags: list[str], extra: list[str]) -> list[str]:
    """Flag overrides then the user's extra arguments; an extra override of the same key wins."""
    taken = {_override_key(arg) for arg in extra} - {None}
    return [arg for arg in from_flags if _override_key(arg) not in taken] + extra


def run(script: CourseScript, argv: list[str] | None = None) -> None:
    """Parse the course flags and hand the run to dlexp-train: the one loop and its outputs."""
    from dlexp.training import main  # imported late: --help stays fast

    flags, extra = build_parser(script).parse_known_args(argv)
    overrides = merge(flag_overrides(script, flags), extra)
    print("dlexp-train", *overrides, flush=True)
    saved, sys.argv = sys.argv, ["dlexp-train", *overrides]
    try:
        main()
    finally:
        sys.argv = saved
