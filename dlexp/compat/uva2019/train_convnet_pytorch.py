"""The course's train_convnet_pytorch.py: course flags, run by `dlexp-train model=convnet`."""

from dlexp.compat.uva2019.course_flags import CONVNET, run


def main(argv: list[str] | None = None) -> None:
    run(CONVNET, argv)


if __name__ == "__main__":
    main()
