import pytest
import torch

from pioneer.config import LossConfig
from pioneer.training.image_pool import ImagePool, global_pool, pool_size
from pioneer.model.loss import encoder_loss
from pioneer.model.networks import Decoder, Encoder, sample_prior

from conftest import tiny_model


def _batches(n: int, b: int = 8, r: int = 4) -> list[torch.Tensor]:
    """Batches whose images are tagged by a unique id in every pixel: image k is all k."""
    ids = torch.arange(n * b, dtype=torch.float32)
    return [ids[i * b:(i + 1) * b, None, None, None].expand(b, 3, r, r).clone() for i in range(n)]


def _ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_pool_fills_then_swaps_about_half():
    pool, g = ImagePool(20), torch.Generator().manual_seed(0)
    batches = _batches(60)
    out, fresh = pool.query(batches[0], g)      # filling: every image goes in and comes back
    assert torch.equal(out, batches[0]) and fresh.all() and len(pool) == 8
    out, fresh = pool.query(batches[1], g)
    assert torch.equal(out, batches[1]) and fresh.all() and len(pool) == 16
    out, fresh = pool.query(batches[2], g)      # 4 more fill it; the other 4 follow the coin
    assert fresh[:4].all() and len(pool) == 20
    swapped, seen = 0, set(range(24))
    for b in batches[3:]:
        ids, (out, fresh) = _ids(b), pool.query(b, g)
        got = _ids(out)
        for j in range(len(b)):
            if fresh[j]:
                assert got[j] == ids[j]
            else:  # an older image, never a future one
                assert got[j] in seen or got[j] in ids[:j]
        seen |= set(ids)
        swapped += int((~fresh).sum())
    n = 57 * 8
    assert 0.4 * n < swapped < 0.6 * n
    assert len(pool) == 20


def test_pool_is_determined_by_its_generator_and_state_round_trips():
    batches = _batches(12)

    def run(pool: ImagePool, g: torch.Generator, bs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.cat([o, f[:, None, None, None].expand_as(o)]) for o, f in (pool.query(b, g) for b in bs)]

    a = run(ImagePool(10), torch.Generator().manual_seed(3), batches)
    assert all(torch.equal(x, y) for x, y in zip(a, run(ImagePool(10), torch.Generator().manual_seed(3), batches)))
    # stop after 5 batches, save, restore into a new pool, continue: the same outputs
    pool, g = ImagePool(10), torch.Generator().manual_seed(3)
    run(pool, g, batches[:5])
    state, gstate = pool.state_dict(), g.get_state()
    assert state["size"] == 10 and state["images"].shape == (10, 3, 4, 4)
    other, g2 = ImagePool(3), torch.Generator().set_state(gstate)
    other.load_state_dict(state)
    assert other.size == 10 and len(other) == 10
    assert torch.equal(other.state_dict()["images"], state["images"])  # before and after its first query
    rest = run(other, g2, batches[5:])
    assert all(torch.equal(x, y) for x, y in zip(a[5:], rest))
    # an empty pool round-trips too (older states have none: the loop resets instead)
    empty = ImagePool(4)
    empty.load_state_dict(ImagePool(4).state_dict())
    assert len(empty) == 0


def test_pool_reset_and_resolution_guard():
    pool, g = ImagePool(8), torch.Generator().manual_seed(0)
    pool.query(_batches(1, r=4)[0], g)
    with pytest.raises(ValueError, match="reset it at each phase change"):
        pool.query(_batches(1, r=8)[0], g)
    pool.reset(5)
    assert len(pool) == 0 and pool.size == 5
    out, fresh = pool.query(_batches(1, r=8)[0], g)
    assert fresh[:5].all() and len(pool) == 5
    assert pool_size(200, 128) == 200 and pool_size(200, 256) == 100 and pool_size(200, 1024) == 100


def test_global_pool_gives_each_rank_its_rows_of_the_single_process_pool():
    """Two 'ranks' (gather simulated) end up with the single process's outputs and pool."""
    batches = _batches(6)
    single, g = ImagePool(10), torch.Generator().manual_seed(1)
    expected = [single.query(b, g) for b in batches]
    pools = [ImagePool(10), ImagePool(10)]
    gens = [torch.Generator().manual_seed(1) for _ in range(2)]
    for b, (out, fresh) in zip(batches, expected):
        for r in range(2):
            query = global_pool(pools[r], gens[r], lambda t, b=b: b, 4 * r, 4 * r + 4)  # gather = the global batch
            o, f = query(b[4 * r:4 * r + 4])
            assert torch.equal(o, out[4 * r:4 * r + 4]) and torch.equal(f, fresh[4 * r:4 * r + 4])
    for p in pools:
        assert torch.equal(p.state_dict()["images"], single.state_dict()["images"])


def test_encoder_loss_with_a_pool_uses_fresh_entries_for_the_cycle_term():
    torch.manual_seed(0)
    cfg = tiny_model()
    E, G = Encoder(cfg), Decoder(cfg)
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    z = sample_prior(6, cfg.latent_dim, torch.Generator().manual_seed(0))
    fresh = torch.tensor([True, False, True, True, False, False])
    old = torch.rand(6, 3, 16, 16) * 2 - 1                     # "older" fakes from the pool

    def pool(fake):
        return torch.where(fresh[:, None, None, None], fake, old), fresh

    lcfg = LossConfig(encoder_cycle_weight=0.5)
    le = encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.5, lcfg, pool=pool)
    with torch.no_grad():
        fake = torch.where(fresh[:, None, None, None], G(z, 2), old)
        fake_z = E(fake, 2)
    per_image = 1 - (z * fake_z).sum(dim=1)
    torch.testing.assert_close(le.cycle, per_image[fresh].mean())
    torch.testing.assert_close(le.fake_z, fake_z)          # the KL's fake term sees the pooled images
    plain = encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.5, lcfg)  # no pool: the mean over all entries
    with torch.no_grad():
        torch.testing.assert_close(plain.cycle, (1 - (z * E(G(z, 2), 2)).sum(dim=1)).mean())
    none_fresh = encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.5, lcfg, pool=lambda f: (old, torch.zeros(6, dtype=torch.bool)))
    assert none_fresh.cycle.item() == 0.0 and torch.isfinite(none_fresh.total)
