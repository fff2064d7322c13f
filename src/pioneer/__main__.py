"""`python -m pioneer` (also what torchrun launches)."""

from .cli import main

main()
