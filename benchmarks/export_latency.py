"""CPU latency of the exported networks under onnxruntime against PyTorch (pioneer.Pioneer), in
the same process, on the same inputs: encode and decode of one image, and encode + decode of
a batch.

    python benchmarks/export_latency.py                                     # the default run's architecture
    python benchmarks/export_latency.py --snapshot runs/00000-synthetic64/snapshot.safetensors
    python benchmarks/export_latency.py --threads 1,2 --json out.json

Weights are random unless --snapshot is given: latency does not depend on them. The model is
exported with `pioneer.export.export` (ONNX, verified against PyTorch) into a temporary folder.
PyTorch runs through the facade (channels_last, inference mode), onnxruntime through one
InferenceSession per network with as many intra-op threads as torch. The machines are shared
and noisy: medians of --iters runs, ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np
import torch

from inference_latency import MODELS, _median_seconds   # same folder: the runs are timed alike
from pioneer import Pioneer
from pioneer.share.export import export
from pioneer.model.networks import Decoder, Encoder


def _session(path: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def measure(model: Pioneer, folder: str, threads: int, batch: int, iters: int, warmup: int) -> dict:
    torch.set_num_threads(threads)
    enc, dec = _session(f"{folder}/encoder.onnx", threads), _session(f"{folder}/decoder.onnx", threads)
    cpu = torch.device("cpu")
    r = model.resolution
    gen = torch.Generator().manual_seed(0)
    one, many = (torch.rand(n, 3, r, r, generator=gen) * 2 - 1 for n in (1, batch))
    z1 = model.encode(one)
    one_np, many_np, z1_np = one.numpy(), many.numpy(), z1.numpy()
    ort_enc = lambda x: enc.run(None, {"images": x})[0]           # noqa: E731
    ort_dec = lambda z: dec.run(None, {"codes": z})[0]            # noqa: E731
    times = {
        ("pytorch", "encode"): lambda: model.encode(one),
        ("pytorch", "decode"): lambda: model.decode(z1),
        ("pytorch", "batch"): lambda: model.decode(model.encode(many, batch_size=batch), batch_size=batch),
        ("onnxruntime", "encode"): lambda: ort_enc(one_np),
        ("onnxruntime", "decode"): lambda: ort_dec(z1_np),
        ("onnxruntime", "batch"): lambda: ort_dec(ort_enc(many_np)),
    }
    out: dict = {"threads": threads, "batch": batch}
    for (engine, what), fn in times.items():
        n = iters if what != "batch" else max(3, iters // 5)
        out[f"{engine}_{what}_ms"] = _median_seconds(fn, n, warmup, cpu) * 1e3
    x = model.decode(model.encode(many))
    out["max_abs_diff"] = float(np.abs(ort_dec(ort_enc(many_np)) - x.numpy()).max())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="synthetic64", choices=sorted(MODELS), help="architecture (random weights)")
    ap.add_argument("--snapshot", help="a trained snapshot instead of random weights")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()

    if args.snapshot:
        model = Pioneer.load(args.snapshot, device="cpu")
    else:
        cfg = MODELS[args.model]()
        torch.manual_seed(0)
        model = Pioneer(Encoder(cfg), Decoder(cfg), level=cfg.num_levels - 1, device="cpu")
    import onnxruntime as ort

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        result = export(model, folder, "onnx")
        for threads in (int(t) for t in args.threads.split(",")):
            rows.append(measure(model, folder, threads, args.batch, args.iters, args.warmup))
    name = args.snapshot or args.model
    print(f"{name}: {model.resolution}x{model.resolution}, latent {model.latent_dim}; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}, load average {os.getloadavg()[0]:.1f}; export check {result.max_abs_diff}")
    header = (f"{'threads':>7} {'what':<22} {'pytorch':>10} {'onnxruntime':>12} {'speed-up':>9}")
    print(header)
    print("-" * len(header))
    for row in rows:
        for what, label in (("encode", "encode 1 image"), ("decode", "decode 1 code"),
                            ("batch", f"enc+dec batch {row['batch']}")):
            pt, rt = row[f"pytorch_{what}_ms"], row[f"onnxruntime_{what}_ms"]
            print(f"{row['threads']:>7} {label:<22} {pt:>8.2f}ms {rt:>10.2f}ms {pt / rt:>8.2f}x")
        print(f"{'':>7} max |ORT - PyTorch| on the batch: {row['max_abs_diff']:.2g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": name, "torch": torch.__version__, "onnxruntime": ort.__version__,
                       "load_average": os.getloadavg()[0], "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
