"""How closely two gloo ranks with half a batch each reproduce one process's gradient, in
float32 and in float64, and how large a real mistake would be: the numbers behind the
tolerance of tests/test_training.py::test_two_process_gloo_matches_single_process.

    python benchmarks/gradient_agreement.py
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/gradient_agreement.py

One encoder step and one decoder step of fresh tiny networks (tests/conftest.py) on a batch of
8, at 8 px during a fade-in. Prints, per dtype, the largest difference between the two-rank
and the one-process gradient over all tensors, relative to each tensor's largest entry; and
the smallest and largest for two ranks that compute the KL statistics over their local half
only (a bug the test must catch).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import tiny_config  # noqa: E402

from step_gradients import global_batch, step_gradients  # noqa: E402

from pioneer import distributed as dist  # noqa: E402


def worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init("cpu")
    try:
        cfg = tiny_config()
        x, z = global_batch(cfg)
        half = slice(rank * 4, rank * 4 + 4)
        result = {}
        for dtype in (torch.float32, torch.float64):
            result[f"{dtype}"] = step_gradients(x[half], z[half], cfg, dist.gather_with_grad, dtype)
            result[f"{dtype} local KL"] = step_gradients(x[half], z[half], cfg, lambda t: t, dtype)
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.shutdown()


def relative(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[float]:
    """Per tensor: max |a - b| relative to max |b|."""
    return [(a[k] - g).abs().max().item() / g.abs().max().item() for k, g in b.items()]


def main() -> None:
    torch.set_num_threads(1)   # as the workers
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ranks.pt")
        mp.start_processes(worker, args=(port, out), nprocs=2, join=True, start_method="spawn")
        ranks = torch.load(out, weights_only=True)
    cfg = tiny_config()
    x, z = global_batch(cfg)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for dtype in (torch.float32, torch.float64):
        single = step_gradients(x, z, cfg, lambda t: t, dtype)
        same = relative(ranks[f"{dtype}"], single)
        bug = relative(ranks[f"{dtype} local KL"], single)
        print(f"{str(dtype):14s} two ranks vs one: at most {max(same):.1e} of a tensor's max|g|; "
              f"with the local-KL bug: {min(bug):.1e} to {max(bug):.1e}")


if __name__ == "__main__":
    main()
