"""The course's script, its flags translated for `dlexp-train experiment=seed_convnet`."""

from dlexp.compat.uva2019.course_flags import CONVNET, run


def main(argv: list[str] | None = None) -> None:
    run(CONVNET, argv)


if __name__ == "__main__":
    main()
