"""`python -m pioneer` (also what torchrun launches)."""

from pioneer.entry import run

run()
