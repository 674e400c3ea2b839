"""The course's train_mlp_numpy.py: course flags, run by `dlexp-train model=numpy_mlp`."""

from dlexp.compat.uva2019.course_flags import NUMPY_MLP, run


def main(argv: list[str] | None = None) -> None:
    run(NUMPY_MLP, argv)


if __name__ == "__main__":
    main()
