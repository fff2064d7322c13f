"""Print what a test or benchmark run runs on: torch, the CPU kernels it dispatches to, the CPU.

    python benchmarks/machine.py

One line each; .ci/run prints it before the tests, so a failure says on what machine it failed.
ATEN_CPU_CAPABILITY (default / avx2 / avx512) and OMP_NUM_THREADS change what torch uses.
"""

from __future__ import annotations

import os
import platform


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """'Intel(R) Xeon(R) Processor (family 6, model 167)'; virtual machines often hide the name,
    the family and model numbers still tell the generation."""
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or platform.machine()
    return f"{name} (family {info['cpu family']}, model {info['model']})" if "model" in info else name


def main() -> None:
    import torch

    flags = f" {_cpuinfo().get('flags', '')} "
    extras = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile") if f" {f} " in flags]
    print(f"torch {torch.__version__} (python {platform.python_version()}), "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()} "
          f"(ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'unset')}), "
          f"{torch.get_num_threads()} torch threads")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores" + (f", {' '.join(extras)}" if extras else ""))


if __name__ == "__main__":
    main()
