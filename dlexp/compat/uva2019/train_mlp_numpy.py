"""The course's script, its flags translated for `dlexp-train experiment=seed_numpy_mlp`."""

from dlexp.compat.uva2019.course_flags import NUMPY_MLP, run


def main(argv: list[str] | None = None) -> None:
    run(NUMPY_MLP, argv)


if __name__ == "__main__":
    main()
