"""`python -m dlexp [overrides]` is `dlexp-train [overrides]`."""

from dlexp.training import main

main()
