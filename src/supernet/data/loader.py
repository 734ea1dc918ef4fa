"""Train/valid split and a loader that keeps the whole dataset on the device and augments there.

CIFAR-10 is 180 MB as uint8, so it fits on any accelerator; batching by indexing a resident tensor
removes the host-side DataLoader (workers, pinned copies) that otherwise bounds small-network training.
All randomness for epoch ``e`` comes from a generator seeded by ``(seed, e)``, so a resumed run
replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from supernet.errors import SupernetError

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
PAD = 4


def split_indices(n: int, train_portion: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random, seed-determined split; both halves sorted so they read the source in order."""
    if n < 1:
        raise SupernetError(f"cannot split {n} samples")
    if not 0.0 < train_portion <= 1.0:
        raise SupernetError(f"train_portion must be in (0, 1], got {train_portion}")
    k = round(train_portion * n)
    if k == 0:
        raise SupernetError(f"train_portion={train_portion} of {n} samples leaves no training data")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:k]), np.sort(perm[k:])


def draw_augmentation(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop offsets in [0, 2*PAD] (as torchvision's RandomCrop on the padded image) and flip flags.

    Kept apart from :func:`apply_augmentation` so tests can check the application against a reference.
    """
    device = generator.device
    dy = torch.randint(0, 2 * PAD + 1, (n,), generator=generator, device=device)
    dx = torch.randint(0, 2 * PAD + 1, (n,), generator=generator, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    return dy, dx, flip


def apply_augmentation(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Zero-pad, crop and flip a uint8 NCHW batch with one gather: no per-sample Python work, no host sync."""
    b, c, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = torch.arange(w, device=x.device)
    cols = dx[:, None] + torch.where(
        flip[:, None], w - 1 - cols, cols
    )  # flipping = reading columns backwards
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def cutout_mask(cy: torch.Tensor, cx: torch.Tensor, size: int, h: int, w: int) -> torch.Tensor:
    """(B, 1, H, W) float mask zeroing a ``size`` square centred at (cy, cx), clipped at the borders, as DARTS'
    Cutout (DeVries & Taylor 2017) cuts it: rows max(cy - size//2, 0) up to min(cy + size//2, h)."""
    rows = torch.arange(h, device=cy.device)[None, :]
    cols = torch.arange(w, device=cx.device)[None, :]
    half = size // 2
    in_rows = (rows >= (cy[:, None] - half).clamp(0, h)) & (rows < (cy[:, None] + half).clamp(0, h))
    in_cols = (cols >= (cx[:, None] - half).clamp(0, w)) & (cols < (cx[:, None] + half).clamp(0, w))
    return (~(in_rows[:, :, None] & in_cols[:, None, :])).float()[:, None]


class DeviceLoader:
    """Batches of normalised float32 NCHW images from uint8 data held once on ``device``."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        augment: bool,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        device: torch.device | str = "cpu",
        channels_last: bool = False,
        cutout: int = 0,
    ) -> None:
        """``cutout``: side of a square zeroed (after normalisation, as DARTS does) in each augmented image."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise SupernetError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        if len(labels) != len(images):
            raise SupernetError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise SupernetError(f"batch_size must be >= 1, got {batch_size}")
        if seed < 0:
            raise SupernetError(f"seed must be >= 0, got {seed}")
        self.device = torch.device(device)
        self.images = (
            torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(self.device)
        )
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).to(self.device)
        self.batch_size, self.augment, self.shuffle, self.drop_last = batch_size, augment, shuffle, drop_last
        self.seed, self.channels_last, self.cutout = seed, channels_last, cutout
        # (x / 255 - mean) / std folded into one multiply-add.
        std = torch.tensor(CIFAR_STD, device=self.device).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std)
        self._shift = -torch.tensor(CIFAR_MEAN, device=self.device).view(1, 3, 1, 1) / std

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW -> float32 normalised, in the requested memory format."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # convert while still 1 byte per value
        return torch.addcmul(self._shift, x.float(), self._scale)

    def generator(self, epoch: int) -> torch.Generator:
        """Seeded from (seed, epoch) through SeedSequence so neighbouring epochs get unrelated streams."""
        if epoch < 0:
            raise SupernetError(f"epoch must be >= 0, got {epoch}")
        state = np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0]
        return torch.Generator(device=self.device).manual_seed(int(state) >> 1)

    def epoch(self, e: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images, labels) batches for epoch ``e``; identical for a given (seed, e) in any process."""
        gen = self.generator(e)
        n = self.num_samples
        order = torch.randperm(n, generator=gen, device=self.device) if self.shuffle else None
        if self.augment:
            dy, dx, flip = draw_augmentation(n, gen)
        cut = self.augment and self.cutout > 0
        if cut:  # drawn after the crops and flips, so a loader without cutout sees the very same ones
            h, w = self.images.shape[2:]
            cy = torch.randint(0, h, (n,), generator=gen, device=self.device)
            cx = torch.randint(0, w, (n,), generator=gen, device=self.device)
        for i in range(len(self)):
            sl = slice(i * self.batch_size, min((i + 1) * self.batch_size, n))
            idx = order[sl] if order is not None else sl
            x = self.images[idx]
            if self.augment:
                x = apply_augmentation(x, dy[sl], dx[sl], flip[sl])
            x = self.normalize(x)
            if cut:
                x = x * cutout_mask(cy[sl], cx[sl], self.cutout, h, w)  # broadcast: x keeps its memory format
            yield x, self.labels[idx]
