"""Running `pioneer train` as several processes: the torchrun relaunch behind --gpus and
--max-restarts, and the decisions rank 0 makes for every rank."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from pioneer import distributed as dist
from pioneer.cli.common import fail
from pioneer.run.files import next_run_dir


def on_rank0(fn: Callable[[], Any]) -> Any:
    """fn() on rank 0, its result (or its error) on every rank: one decision for all ranks, even
    when the nodes see a shared folder differently (NFS caches)."""
    box: list[Any] = [None]
    if dist.is_main():
        try:
            box[0] = ("ok", fn())
        except click.ClickException as e:
            box[0] = ("error", e.message)
    if dist.world_size() > 1:
        import torch.distributed as tdist
        tdist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        fail(value)
    return value


def create_run_dir(outdir: Path, desc: str) -> Path:
    """Rank 0 picks the next numbered folder and tells the other ranks."""
    import torch.distributed as tdist

    path = [""]
    if dist.is_main():
        for _ in range(100):
            path = [str(next_run_dir(outdir, desc))]
            try:
                Path(path[0]).mkdir(parents=True, exist_ok=False)
                break
            except FileExistsError:  # another run took this number a moment ago: take the next
                continue
    if dist.world_size() > 1:
        tdist.broadcast_object_list(path, src=0)
    return Path(path[0])


def torchrun_command(argv: list[str], nproc: int, max_restarts: int, run_dir: Path | None) -> list[str]:
    """The torchrun command that re-runs `pioneer argv` with `nproc` processes on this machine.

    --gpus and --max-restarts go to torchrun; with run_dir the workers get --run-dir instead of
    --outdir/--name, so that a restarted worker resumes the run instead of starting a new one.
    """
    drop = {"--gpus", "--max-restarts"} | ({"--outdir", "--name", "--run-dir"} if run_dir is not None else set())
    cleaned: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in drop:
            skip = True  # and its value
            continue
        if a.split("=", 1)[0] in drop:
            continue
        cleaned.append(a)
    if run_dir is not None:
        cleaned += ["--run-dir", str(run_dir)]
    restarts = [f"--max-restarts={max_restarts}"] if max_restarts else []
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *restarts,
            "-m", "pioneer", *cleaned]


def relaunch_with_torchrun(cmd: list[str], max_restarts: int) -> None:
    """Replace this process by the torchrun launch `cmd`."""
    env = dict(os.environ)
    if max_restarts:
        env.setdefault(*_OWN_STORE)
    click.echo("launching: " + " ".join(cmd), err=True)
    os.execve(sys.executable, cmd, env)


# torchrun's c10d rendezvous shares one store with the workers of every attempt, and restarted
# workers then read the previous attempt's addresses and cannot connect (pytorch/pytorch#135712;
# still so in torch 2.14). With this set, each attempt's rank 0 starts a fresh store.
_OWN_STORE = ("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")


def warn_shared_store() -> None:
    """Under torchrun with restarts and a shared store: say how to make the restarts work."""
    if (os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
            and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0):
        click.echo(f"warning: restarted workers may fail to reconnect through torchrun's shared store; "
                   f"set {_OWN_STORE[0]}={_OWN_STORE[1]} in torchrun's environment", err=True)
