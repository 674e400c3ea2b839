"""The course's script, its flags translated for `dlexp-train experiment=seed_torch_mlp`."""

from dlexp.compat.uva2019.course_flags import TORCH_MLP, run


def main(argv: list[str] | None = None) -> None:
    run(TORCH_MLP, argv)


if __name__ == "__main__":
    main()
