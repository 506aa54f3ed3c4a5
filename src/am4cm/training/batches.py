"""Batches of cached pixels, grouped by series length so that little time is spent on padding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from am4cm.training.cache import PixelSplit


@dataclass(frozen=True)
class Batch:
    """One batch as tensors: reflectance (B, T, 10) int16, days (B, T), mask (B, T), labels (B,)."""

    x: torch.Tensor
    days: torch.Tensor
    mask: torch.Tensor
    label: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device`` (non-blocking copies)."""
        return Batch(
            *(
                tensor.to(device, non_blocking=True)
                for tensor in (self.x, self.days, self.mask, self.label)
            )
        )


def batch_indices(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Split pixel indices into batches of equal series length (PASTIS lengths are per tile).

    With ``rng``, pixels are shuffled within each length and the batch order is shuffled;
    without, the order is deterministic (for evaluation). Indices in a batch are sorted so that
    memory-mapped reads go forward through the file.
    """
    batches = []
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        if rng is not None:
            members = rng.permutation(members)
        batches.extend(
            np.sort(members[start : start + batch_size])
            for start in range(0, len(members), batch_size)
        )
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def gather(split: PixelSplit, indices: np.ndarray) -> Batch:
    """Read the pixels ``indices`` (all of one length) from the memory maps into a batch."""
    n_dates = int(split.length[indices].max())
    x = torch.from_numpy(np.ascontiguousarray(split.x[indices, :n_dates]))
    days = torch.from_numpy(split.days[indices, :n_dates].astype(np.int64))
    mask = torch.from_numpy(np.arange(n_dates) < split.length[indices, None])
    label = torch.from_numpy(split.label[indices].astype(np.int64))
    return Batch(x, days, mask, label)


def iterate_batches(
    split: PixelSplit, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[Batch]:
    """Batches of a cached split, shuffled with ``rng`` or in a fixed order without it."""
    for indices in batch_indices(np.asarray(split.length), batch_size, rng):
        yield gather(split, indices)
