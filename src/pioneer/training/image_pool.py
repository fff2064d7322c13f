"""The authors' image pool for the encoder's fake KL term (CycleGAN's history of fakes).

Per generated image, in batch order: while the pool is not full, the image is stored and
returned; afterwards, with probability 1/2 a random stored image is returned and the new one
takes its place, otherwise the new image is returned. The encoder then also sees fakes of the
recent past, not only those of the current decoder. The authors keep 200 images below 256 px
and 100 from 256 px on, empty the pool at each phase change and use it once alpha reaches 1.

Randomness comes only from the generator passed to query(), and a fixed amount of it per
query (two numbers per image), so a run stays determined by its seed and resumes exactly.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from pioneer.model.loss import PoolFn


def pool_size(base: int, resolution: int) -> int:
    """Pool capacity at `resolution` for TrainConfig.image_pool = base: halved from 256 px on,
    as in the authors' code (200 / 100)."""
    return base // 2 if resolution >= 256 else base


class ImagePool:
    """A pool of up to `size` images of one resolution (see the module docstring)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"image pool size {size} must be at least 1")
        self.size = size
        self._images: torch.Tensor | None = None   # (size, 3, r, r), allocated by the first query
        self._count = 0                            # slots 0.._count-1 are filled
        self._loaded: torch.Tensor | None = None   # (n, 3, r, r) from load_state_dict, until that query

    def __len__(self) -> int:
        return self._count

    def reset(self, size: int | None = None) -> None:
        """Empty the pool (at a phase change), optionally with a new capacity."""
        if size is not None:
            if size < 1:
                raise ValueError(f"image pool size {size} must be at least 1")
            self.size = size
        self._images, self._count, self._loaded = None, 0, None

    @torch.no_grad()
    def query(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, r, r) -> (images (B, 3, r, r), fresh (B,) bool on images' device).

        fresh[j] is True where the output is images[j] itself; elsewhere it is an older image
        (possibly one stored earlier in this same batch, as CycleGAN's sequential rule gives).
        """
        B = images.shape[0]
        swap = (torch.rand(B, generator=generator) < 0.5).tolist()         # drawn on the CPU
        slots = torch.randint(self.size, (B,), generator=generator).tolist()
        if self._images is None:
            self._allocate(images)
        if self._images.shape[1:] != images.shape[1:]:
            raise ValueError(f"the image pool holds {tuple(self._images.shape[1:])} images, got "
                             f"{tuple(images.shape[1:])}: reset it at each phase change")

        # Plan on the CPU, one image at a time (CycleGAN's rule), then apply it in a few index ops.
        from_pool: list[tuple[int, int]] = []      # (j, k): output j = slot k as it was before this batch
        from_batch: list[tuple[int, int]] = []     # (j, i): output j = images[i], stored earlier in this batch
        writes: dict[int, int] = {}                # slot k <- images[i] after the batch
        fresh = [True] * B
        count = self._count
        for j in range(B):
            if count < self.size:
                writes[count] = j
                count += 1
            elif swap[j]:
                k = slots[j]
                if k in writes:
                    from_batch.append((j, writes[k]))
                else:
                    from_pool.append((j, k))
                writes[k] = j
                fresh[j] = False

        def upload(pairs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            # From the CPU without blocking (as the loop uploads its draws): no wait on the GPU.
            a, b = torch.tensor(list(pairs)).T
            return a.to(images.device, non_blocking=True), b.to(images.device, non_blocking=True)

        out = images.clone()
        if from_pool:
            j, k = upload(from_pool)
            out[j] = self._images[k].to(out.dtype)
        if from_batch:
            j, i = upload(from_batch)
            out[j] = images[i]
        if writes:
            k, i = upload(writes.items())
            self._images[k] = images[i].to(self._images.dtype)
        self._count = count
        return out, torch.tensor(fresh).to(images.device, non_blocking=True)

    def _allocate(self, images: torch.Tensor) -> None:
        """Storage on the images' device, in their dtype, holding what load_state_dict gave."""
        shape = self._loaded.shape[1:] if self._loaded is not None else images.shape[1:]
        self._images = images.new_empty((self.size, *shape))
        if self._loaded is not None:
            self._images[: self._count] = self._loaded.to(images.device, images.dtype)
            self._loaded = None

    def state_dict(self) -> dict[str, Any]:
        """{"size": capacity, "images": (n, 3, r, r) the stored images, on the CPU}."""
        if self._loaded is not None:
            images = self._loaded
        elif self._images is not None:
            images = self._images[: self._count]
        else:
            images = torch.empty(0)
        return {"size": self.size, "images": images.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        images = state["images"]
        if images.numel() and (images.dim() != 4 or len(images) > int(state["size"])):
            raise ValueError(f"image pool state: {tuple(images.shape)} images for {state['size']} slots")
        self.reset(int(state["size"]))
        # Kept as loaded (CPU) until the next query puts them on the images' device and dtype.
        if images.numel():
            self._loaded, self._count = images, len(images)


def global_pool(pool: ImagePool, generator: torch.Generator, gather: Callable[[torch.Tensor], torch.Tensor],
                lo: int, hi: int) -> PoolFn:
    """The pool applied to the global batch, for a rank that holds rows lo:hi of it.

    Every rank gathers all ranks' fakes, runs the same pool on the global batch with the same
    random numbers (so every rank holds the same pool, and rank 0's checkpoint holds it all)
    and keeps its own rows. A run with the pool on is thus still determined by its seed, not
    by the number of processes. The price: one all-gather of the fakes per encoder step.
    """
    def query(fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images, fresh = pool.query(gather(fake.detach()), generator)          # (B, 3, r, r), (B,)
        return images[lo:hi], fresh[lo:hi]

    return query
