"""The course's train_mlp_pytorch.py: course flags, run by `dlexp-train model=torch_mlp`."""

from dlexp.compat.uva2019.course_flags import TORCH_MLP, run


def main(argv: list[str] | None = None) -> None:
    run(TORCH_MLP, argv)


if __name__ == "__main__":
    main()
