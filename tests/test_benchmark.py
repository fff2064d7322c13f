"""The speed-measurement library behind benchmarks/ and the GPU check."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.utils.parametrizations import _SpectralNorm

from pioneer.training import speed as bm
from pioneer.config import preset
from pioneer.model.networks import Decoder, Encoder, sample_prior
from pioneer.training.step import training_iteration

from conftest import tiny_config

pytest_plugins = ["model_fixtures"]

ROOT = Path(__file__).resolve().parents[1]


def test_schedule_images_and_hours_add_up():
    cfg = preset("celebahq256")
    n = bm.images_per_resolution(cfg)
    assert sum(n.values()) == pytest.approx(cfg.schedule.total_kimg * 1000)
    assert n[256] == pytest.approx((25480 - 20040) * 1000)       # the 256px phase of the paper
    assert n[64] == pytest.approx((16520 - 9600) * 1000)          # 64px spans three rules
    hours = bm.schedule_hours(cfg, {r: 100.0 for r in n})
    assert sum(hours.values()) == pytest.approx(25480e3 / 100 / 3600)
    assert bm.schedule_flops(cfg, {r: 2.0 for r in n}) == pytest.approx(2 * 25480e3)


@pytest.mark.parametrize("resolution, notes_gflop", [(4, 2.5), (8, 13.9)])
def test_counted_flops_match_the_authors_table(resolution, notes_gflop):
    """FLOPs of one training iteration of the full-width architecture, counted on our code,
    equal the notes' table less what the decoder's first conv saves as a matrix product: its
    4x4 conv with padding 3 on a 1x1 input does 16x the needed work, and one iteration runs it
    7 times (forward + input gradient in the encoder step, one no-grad forward, forward +
    weight gradient in each of the 2 decoder steps)."""
    cfg = preset("celebahq256")
    saved = 7 * 2 * 16 * 512 * 512 * 16 * (1 - 1 / 16) / 1e9
    ours = bm.training_flops_per_image(cfg, resolution) / 1e9
    assert ours == pytest.approx(notes_gflop - saved, rel=0.05)


def _count_power_iterations(monkeypatch) -> dict:
    calls = {"n": 0}
    real = _SpectralNorm._power_method

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(_SpectralNorm, "_power_method", counting)
    return calls


@pytest.mark.parametrize("sn_cache, encoder_step_forwards", [(False, 2), (True, 1)])
def test_sn_cache_runs_one_power_iteration_per_step(monkeypatch, sn_cache, encoder_step_forwards):
    """Without the cache every forward runs a power iteration (the encoder step runs E and G
    twice each); with it, each spectral-normalised weight is computed once per step."""
    cfg = tiny_config()
    torch.manual_seed(0)
    E, G = Encoder(cfg.model), Decoder(cfg.model)
    n_sn = sum(isinstance(m, _SpectralNorm) for m in [*E.modules(), *G.modules()])
    opt_E, opt_G = torch.optim.Adam(E.parameters()), torch.optim.Adam(G.parameters())
    st = bm._stable_state(16, 4)
    calls = _count_power_iterations(monkeypatch)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    le, lg = training_iteration(E, G, opt_E, opt_G, x, sample_prior(4, 32), [sample_prior(4, 32)] * 2, st, cfg.loss,
                                torch.autocast("cpu", enabled=False), gather=lambda v: v, sn_cache=sn_cache)
    assert math.isfinite(float(le.total.detach())) and math.isfinite(float(lg.total.detach()))
    # every SN conv of both networks is used at 16px (level 2 is the top of the tiny model)
    assert calls["n"] == n_sn * (encoder_step_forwards + 2)


def test_measure_reports_consistent_numbers():
    cfg = tiny_config()
    m = bm.measure("train", cfg, "eager", 8, 4, torch.device("cpu"), iters=2, warmup=1)
    assert m.images_per_s == pytest.approx(4 / (m.ms_per_iter / 1000))
    assert m.gflop_per_image > 0 and m.tflops == pytest.approx(m.gflop_per_image * m.images_per_s / 1000)
    assert m.mfu is None and m.peak_mem_gib > 0       # no peak FLOP/s known for CPUs
    mi = bm.measure("infer", cfg.optimised(), "optimised", 8, 4, torch.device("cpu"), iters=2, warmup=1)
    assert 0 < mi.gflop_per_image < m.gflop_per_image


def test_peak_tflops_known_only_for_gpus():
    assert bm.peak_tflops(torch.device("cpu"), True) is None
    bf16, tf32, fp32 = bm.PEAK_TFLOPS["H200"]
    assert bf16 > tf32 > fp32


@pytest.mark.slow
def test_gpu_check_smoke_on_cpu(tmp_path):
    """The GPU check script runs end to end (tiny networks) and writes its report."""
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--device", "cpu",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "gpu_check.json").read_text())
    full = report["full_size"]
    assert set(full["variants"]) == {"eager-fp32", "optimised-bf16"}
    assert full["variants"]["optimised-bf16"]["train"]["images_per_s"] > 0
    est = report["per_resolution"]
    for name in ("eager-fp32", "optimised-bf16"):
        assert est[name]["schedule_hours"] > 0 and set(est[name]["hours_per_resolution"]) == {"4", "8", "16"}
    assert all(row["loader_images_per_s"] > 0 for row in est["rows"])
    run = report["progressive_run"]
    assert run["finite_losses"] and run["diverged"] is None and set(run["images_per_s"]) == {"4", "8", "16"}
    assert "whole schedule" in proc.stdout


@pytest.mark.slow
def test_generation_benchmark_measures_every_target(tiny_snapshot, model_cache):
    """benchmarks/generation.py on the tiny model: every target's number, the fitted sampler's
    extra, the verdicts and the table (Inception on 8 samples, so a few seconds)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generation", ROOT / "benchmarks" / "generation.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    row = gen.measure(tiny_snapshot, num=8, attributes=False, cache_dir=str(model_cache), fitted=True)
    for key in ("precision", "recall", "fid_samples", "fid_rec", "cycle", "rank_real", "heldout_l1", "prior_fit",
                "cycle_kept", "fitted_precision", "fitted_recall", "fitted_fid"):
        assert math.isfinite(row[key]), key
    assert row["num"] == 8 and row["fid_ratio"] == pytest.approx(row["fid_samples"] / row["fid_rec"])
    met = gen.verdicts(row)
    assert set(met) == {"precision", "recall", "fid_ratio", "cycle", "rank_real", "heldout_l1"}
    assert met["heldout_l1"] == (row["heldout_l1"] <= 0.12) and met["rank_real"] == (row["rank_real"] >= 80)
    table = gen.table([row, dict(row, model="again")])
    assert "| mean |" in table and "| target |" in table and ">= 0.5" in table


def test_budget_plot_from_earlier_rows(tmp_path):
    """--from-json --plot: the budget curve of rows written by earlier runs, nothing measured."""
    rows = [{"model": f"r{k}", "kimg": k, "heldout_l1": 0.2 / (1 + k / 100), "cycle": 0.5, "precision": 0.0,
             "met": {"heldout_l1": False}} for k in (86.0, 258.0, 258.0, 774.0)]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generation.py"), str(jsonl), "--from-json",
                          "--plot", str(tmp_path / "curve.png")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("| r") == 4 and "| mean |" in out.stdout and "curve.png" in out.stdout
    from PIL import Image

    with Image.open(tmp_path / "curve.png") as im:
        assert im.width > 300 and im.height > 300


def _ablate():
    import importlib.util

    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("ablate", ROOT / "benchmarks" / "ablate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ablation_variants_change_only_what_they_name():
    ab = _ablate()
    base = ab.variant_config("proxy", {}, 0, [])
    for name, variant in ab.GRIDS["paper"].items():
        cfg = ab.variant_config("proxy", variant, 3, ["loss.kl_weight=0.3"])
        assert cfg.seed == 3 and cfg.loss.kl_weight == 0.3 and cfg.model.decoder_norm == variant["norm"]
        margins = {r.margin for r in cfg.schedule.rules}
        assert margins == ({0.0, ab.MARGIN} if variant["margin"] else {0.0}), name
        assert cfg.schedule.total_kimg == base.schedule.total_kimg and cfg.model.latent_dim == base.model.latent_dim
    on = ab.variant_config("proxy", ab.GRIDS["last-activation"]["last LReLU"], 0, [])
    assert on.model.encoder_last_activation and not base.model.encoder_last_activation
    full = ab.variant_config("default", {"margin": False}, 0, [])
    assert full.schedule.total_kimg == preset("synthetic64").schedule.total_kimg
    assert {r.margin for r in full.schedule.rules} == {0.0}


def test_ablation_skips_finished_runs_and_tables_every_variant(tmp_path):
    """A finished (variant, seed) is never trained again; the table has mean ± sd over seeds and
    the KL gap, the plot one panel per variant."""
    ab = _ablate()
    for i, name in enumerate(ab.GRIDS["margin"]):
        for seed in (0, 1):
            folder = ab._folder(tmp_path, name, seed)
            folder.mkdir(parents=True)
            gaps = [(-0.1 - i * k / 10) for k in range(10)]          # "no margin" drifts further
            folder.joinpath("stats.jsonl").write_text("".join(
                json.dumps({"images_seen": 1000 * k, "kl_real": 2.0, "kl_fake": 2.0 - g, "gap": g}) + "\n"
                for k, g in enumerate(gaps)))
            result = {"variant": name, "seed": seed, "heldout_l1": 0.1 + seed / 100, "diverged": None,
                      **ab.kl_gap(folder)}
            folder.joinpath("result.json").write_text(json.dumps(result))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ablate.py"), "margin", "--out", str(tmp_path),
                          "--seeds", "0,1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "0 to go" in out.stderr
    table = (tmp_path / "table.md").read_text()
    assert "| margin | 2 | 0 | 0.105 ± 0.0071 |" in table
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    gap = {r["variant"]: r["gap_max"] for r in rows}
    assert gap["no margin"] > gap["margin"]
    from PIL import Image

    with Image.open(tmp_path / "kl.png") as im:
        assert im.width > 300
