"""`python -m vdeval ...`: the same command line as the `vdeval` script (and what torchrun launches)."""
from vdeval.cli import main

main()
