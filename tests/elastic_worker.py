"""`python -m pioneer` for tests/test_elastic.py, with one deterministic worker failure: on the
first attempt of an elastic job (TORCHELASTIC_RESTART_COUNT 0), rank 0 dies with os._exit right
after writing its first training checkpoint, as a crash or a lost node would. It leaves
`died-at.txt` (images seen at that checkpoint) next to the checkpoint. torchrun runs this file;
it is not a test module and production code has no hook for it."""

import os
from pathlib import Path

import pioneer.training.loop as training_loop
from pioneer.cli import main

_save_training_state = training_loop.save_training_state


def _save_then_die(path, state):
    _save_training_state(path, state)
    Path(path).with_name("died-at.txt").write_text(str(state["images_seen"]))
    os._exit(17)


if os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0" and os.environ.get("RANK") == "0":
    training_loop.save_training_state = _save_then_die  # the loop calls it through its module globals

main(prog_name="pioneer")
