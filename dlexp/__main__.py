"""`python -m dlexp [overrides]` is `dlexp-train [overrides]`."""

from dlexp.train import main

main()
