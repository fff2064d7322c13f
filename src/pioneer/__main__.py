"""`python -m pioneer` (also what torchrun launches)."""

from pioneer.cli import main

main()
