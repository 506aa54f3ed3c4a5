"""Throughput of the pixel-wise L-TAE against the machine's matrix-multiply peak.

Run ``.venv/bin/python bench/bench_ltae.py`` (``--help`` for the options). Prints one table:
the matmul peak, the FLOPs per pixel of the reference formulation and of what
:class:`~am4cm.models.PixelLTAE` executes, training and inference pixels per second of the
default model at T=50, the achieved fractions of the peak, and the same for the
straightforward formulation (keys on every date) run with the same parameters.

The last section trains on batches read from a memory-mapped pixel cache (as
``train_model`` does) and on the same batches held in memory: their ratio is the cost of the
data path, which should stay under 10 %.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from am4cm.data.facts import N_BANDS, N_CLASSES, REFLECTANCE_SCALE, official_norm_stats
from am4cm.data.index import index_dataset
from am4cm.data.splits import split_run
from am4cm.data.synthetic import SyntheticConfig, generate_synthetic_pastis
from am4cm.models import LTAEConfig, PixelLTAE, count_parameters
from am4cm.models.ltae import masked_softmax, sinusoid_encoding
from am4cm.training.batches import iterate_batches
from am4cm.training.cache import SamplingConfig, build_cache, open_split

Batch = tuple[Tensor, Tensor, Tensor, Tensor]
"""``(x (B, T, C), days (B, T), mask (B, T), labels (B,))``."""
Forward = Callable[[Tensor, Tensor, Tensor], object]
"""``forward(x, days, mask)``, returning logits or ``(logits, attention)``."""

TRAINING_FLOP_FACTOR = 3
"""A training step is counted as 3 forwards (forward + backward), the usual convention."""


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, amp: bool) -> AbstractContextManager:
    """bf16 autocast when ``amp``, else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()


def seconds_per_call(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall-clock seconds of one ``fn()`` over ``repeats`` timings of about 0.1 s each."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    calls = max(1, int(0.1 / max(time.perf_counter() - start, 1e-6)))
    best = math.inf
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def matmul_peak(device: torch.device, dtype: torch.dtype, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of ``torch.matmul`` for square and model-shaped products (best of ``repeats``)."""
    shapes = {
        "2048x2048x2048": (2048, 2048, 2048),
        "4096x1024x1024": (4096, 1024, 1024),
        "25600x256x128 (keys)": (25600, 256, 128),
    }
    if device.type == "cuda":
        shapes["8192x8192x8192"] = (8192, 8192, 8192)
    results = {}
    for name, (m, k, n) in shapes.items():
        left = torch.randn(m, k, device=device, dtype=dtype)
        right = torch.randn(k, n, device=device, dtype=dtype)
        seconds = seconds_per_call(partial(torch.matmul, left, right), device, repeats)
        results[name] = 2 * m * k * n / seconds / 1e9
    return results


def reference_flops(config: LTAEConfig, n_dates: int) -> int:
    """Matmul FLOPs per pixel of the paper's formulation, forward.

    Per date: input projection, keys, scores and the value-weighted sum; per pixel: the MLP
    and the decoder. Elementwise work (encoding, softmax, norms) is not counted.
    """
    c = config
    per_date = 2 * (c.in_channels * c.d_model + c.d_model * c.n_head * c.d_k)
    per_date += 2 * (c.n_head * c.d_k + c.d_model)
    widths = (*c.mlp, *c.decoder, c.n_classes)
    return n_dates * per_date + sum(2 * a * b for a, b in pairwise(widths))


def explicit_forward(model: PixelLTAE) -> Forward:
    """The straightforward formulation with ``model``'s parameters: keys on every date."""
    c = model.config

    def forward(x: Tensor, days: Tensor, mask: Tensor) -> Tensor:
        batch, n_dates, _ = x.shape
        x = (x.to(model.band_mean.dtype) - model.band_mean) / model.band_std  # (B, T, C)
        pe = sinusoid_encoding(days, model.inv_freq, model.phase).repeat(1, 1, c.n_head)
        embedding = model.in_proj(x) + pe  # (B, T, D)
        keys = model.key(embedding).view(batch, n_dates, c.n_head, c.d_k)
        scores = torch.einsum("hk,bthk->bht", model.query, keys) / math.sqrt(c.d_k)
        attention = model.attn_dropout(masked_softmax(scores, mask.unsqueeze(1)))  # (B, H, T)
        values = embedding.view(batch, n_dates, c.n_head, c.head_dim)
        heads = torch.einsum("bht,bthd->bhd", attention.to(values.dtype), values)  # (B, H, Dh)
        return model.decoder(model.out_norm(model.dropout(model.mlp(heads.flatten(1)))))

    return forward


def counted_flops(forward: Forward, batch: Batch, backward: bool) -> float:
    """Matmul FLOPs per pixel that ``forward`` executes on ``batch`` (and its backward)."""
    x, days, mask, labels = batch
    with FlopCounterMode(display=False) as counter:
        out = forward(x, days, mask)
        if backward:
            torch.nn.functional.cross_entropy(out, labels).backward()
    return counter.get_total_flops() / len(x)


def synthetic_batches(
    n_batches: int, batch: int, n_dates: int, device: torch.device, seed: int = 0
) -> list[Batch]:
    """Random PASTIS-like batches: raw reflectance, sorted day offsets, no padding."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        x = torch.randint(0, int(REFLECTANCE_SCALE), (batch, n_dates, N_BANDS), generator=gen)
        days = torch.randint(0, 430, (batch, n_dates), generator=gen).sort(dim=1).values
        mask = torch.ones(batch, n_dates, dtype=torch.bool)
        labels = torch.randint(0, N_CLASSES, (batch,), generator=gen)
        batches.append((x.float().to(device), days.to(device), mask.to(device), labels.to(device)))
    return batches


def measure_training(
    model: PixelLTAE,
    batches: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    *,
    amp: bool = False,
    forward: Forward | None = None,
) -> float:
    """Pixels per second of one Adam step per batch (forward, cross-entropy, backward, step).

    ``forward`` (default: ``model``) may be a compiled model or another formulation using the
    same parameters. Batches are moved to the model's device inside the timed loop.
    """
    forward = model if forward is None else forward
    device = model.band_mean.device
    model.train()
    pixels = 0
    synchronize(device)
    start = time.perf_counter()
    for batch in batches:
        x, days, mask, labels = (t.to(device, non_blocking=True) for t in batch)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss = torch.nn.functional.cross_entropy(forward(x, days, mask), labels)
        loss.backward()
        optimizer.step()
        pixels += len(x)
    synchronize(device)
    return pixels / (time.perf_counter() - start)


def measure_inference(
    model: PixelLTAE,
    batches: Iterable[Batch],
    *,
    amp: bool = False,
    forward: Forward | None = None,
) -> float:
    """Pixels per second of evaluation-mode forwards (default: logits and attention)."""
    if forward is None:
        forward = partial(model, return_attention=True)
    device = model.band_mean.device
    model.eval()
    pixels = 0
    synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            x, days, mask, _ = (t.to(device, non_blocking=True) for t in batch)
            with autocast(device, amp):
                forward(x, days, mask)
            pixels += len(x)
    synchronize(device)
    return pixels / (time.perf_counter() - start)


def best_and_median(measure: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Best and median of ``repeats`` measurements, after one untimed warm-up."""
    measure()
    values = [measure() for _ in range(repeats)]
    return max(values), statistics.median(values)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (and a bf16 peak)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dates", type=int, default=50)
    parser.add_argument("--sweep", default="256,512,1024,2048,4096", help="inference batches")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--pixels", type=int, help="pixels per timing (default 20k on CPU, 2M on GPU)"
    )
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--no-baseline", action="store_true", help="skip the explicit model")
    return parser.parse_args()


Row = tuple[str, tuple[float, float], float, float]
"""``(name, (best, median) px/s, reference FLOPs per pixel, executed FLOPs per pixel)``."""


def time_pixel_ltae(
    model: PixelLTAE,
    optimizer: torch.optim.Optimizer,
    batches: list[Batch],
    args: argparse.Namespace,
) -> list[Row]:
    """Training and inference rows of ``model`` (and of its compiled version with --compile)."""
    n_dates = batches[0][0].shape[1]
    ref = reference_flops(model.config, n_dates)
    model.eval()
    executed = counted_flops(model, batches[0], backward=False)
    model.train()
    executed_train = counted_flops(model, batches[0], backward=True)
    optimizer.zero_grad(set_to_none=True)

    variants: dict[str, PixelLTAE] = {"PixelLTAE": model}
    if args.compile:
        variants["PixelLTAE compiled"] = torch.compile(model)
    rows = []
    for name, module in variants.items():
        train = best_and_median(
            lambda m=module: measure_training(model, batches, optimizer, amp=args.amp, forward=m),
            args.repeats,
        )
        infer = best_and_median(
            lambda m=module: measure_inference(
                model, batches, amp=args.amp, forward=lambda *xdm: m(*xdm, return_attention=True)
            ),
            args.repeats,
        )
        rows.append((f"{name} training", train, TRAINING_FLOP_FACTOR * ref, executed_train))
        rows.append((f"{name} inference + attention", infer, ref, executed))
    return rows


def time_straightforward(
    model: PixelLTAE,
    optimizer: torch.optim.Optimizer,
    batches: list[Batch],
    args: argparse.Namespace,
) -> list[Row]:
    """The same rows for the straightforward formulation (slow: two batches per timing)."""
    explicit = explicit_forward(model)
    ref = reference_flops(model.config, batches[0][0].shape[1])
    model.eval()
    executed = counted_flops(explicit, batches[0], backward=False)
    model.train()
    executed_train = counted_flops(explicit, batches[0], backward=True)
    optimizer.zero_grad(set_to_none=True)
    few, repeats = batches[:2], max(2, args.repeats // 2)
    train = best_and_median(
        lambda: measure_training(model, few, optimizer, amp=args.amp, forward=explicit), repeats
    )
    infer = best_and_median(
        lambda: measure_inference(model, few, amp=args.amp, forward=explicit), repeats
    )
    return [
        ("straightforward training", train, TRAINING_FLOP_FACTOR * ref, executed_train),
        ("straightforward inference", infer, ref, executed),
    ]


def sweep_inference(model: PixelLTAE, args: argparse.Namespace) -> dict[int, tuple[float, float]]:
    """Best and median inference px/s (with attention) for each batch size of ``--sweep``."""
    sweep = {}
    for size in (int(s) for s in args.sweep.split(",")):
        sized = synthetic_batches(2, size, args.dates, model.band_mean.device, seed=1)
        sized *= max(1, args.pixels // (2 * size))
        sweep[size] = best_and_median(
            lambda b=sized: measure_inference(model, b, amp=args.amp), args.repeats
        )
    return sweep


def end_to_end_cache(folder: Path) -> Path:
    """A pixel cache of run 1 built from a small synthetic PASTIS written under ``folder``."""
    root = folder / "PASTIS"
    generate_synthetic_pastis(root, SyntheticConfig(patches_per_fold=2, patch_size=64), False)
    split = split_run(index_dataset(root, progress=False), 1)
    cache = folder / "cache"
    build_cache(root, split, SamplingConfig(pixels_per_patch=4096), cache, progress=False)
    return cache


def time_end_to_end(
    model: PixelLTAE, optimizer: torch.optim.Optimizer, args: argparse.Namespace
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Training px/s with batches read from a memory-mapped cache, and on the same batches
    already in memory (model only), as (best, median) pairs."""
    with tempfile.TemporaryDirectory() as folder:
        split = open_split(end_to_end_cache(Path(folder)), "train")

        def from_cache() -> Iterator[Batch]:
            rng = np.random.default_rng(0)
            for batch in iterate_batches(split, args.batch, rng):
                yield batch.x, batch.days, batch.mask, batch.label

        in_memory = [tuple(t.to(model.band_mean.device) for t in b) for b in from_cache()]
        cached = best_and_median(
            lambda: measure_training(model, from_cache(), optimizer, amp=args.amp), args.repeats
        )
        model_only = best_and_median(
            lambda: measure_training(model, in_memory, optimizer, amp=args.amp), args.repeats
        )
    return cached, model_only


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = LTAEConfig()
    norm = official_norm_stats()["Fold_1"]
    model = PixelLTAE(config, norm["mean"], norm["std"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    args.pixels = args.pixels or (20_000 if device.type == "cpu" else 2_000_000)
    batches = synthetic_batches(4, args.batch, args.dates, device)
    batches *= max(1, args.pixels // (len(batches) * args.batch))

    peak_dtype = torch.bfloat16 if args.amp else torch.float32
    peaks = matmul_peak(device, peak_dtype)
    peak = max(peaks.values())
    rows = time_pixel_ltae(model, optimizer, batches, args)
    if not args.no_baseline:
        rows += time_straightforward(model, optimizer, batches, args)
    sweep = sweep_inference(model, args)
    cached, model_only = time_end_to_end(model, optimizer, args)

    def fraction(flops: float, pixels_per_s: float) -> str:
        return f"{100 * flops * pixels_per_s / (peak * 1e9):8.1f} %"

    ref, executed, executed_train = rows[1][2], rows[1][3], rows[0][3]
    print(
        f"L-TAE pixel benchmark: {device}, threads={torch.get_num_threads()}, torch "
        f"{torch.__version__}, T={args.dates}, batch {args.batch}, amp={args.amp}, "
        f"{count_parameters(model):,} parameters"
    )
    print(f"matmul peak ({str(peak_dtype).removeprefix('torch.')}): {peak:.1f} GFLOP/s, best of")
    for name, gflops in peaks.items():
        print(f"    {name:24s} {gflops:8.1f} GFLOP/s")
    print("matmul FLOPs per pixel (elementwise work not counted):")
    print(f"    reference formulation, forward (keys on every date)  {ref / 1e6:7.3f} MFLOP")
    if not args.no_baseline:
        print(
            f"    counted in the straightforward code, forward          {rows[-1][3] / 1e6:7.3f} MFLOP"
        )
    print(f"    executed by PixelLTAE (folded attention), forward    {executed / 1e6:7.3f} MFLOP")
    print(
        f"    training: reference {TRAINING_FLOP_FACTOR} x forward = "
        f"{TRAINING_FLOP_FACTOR * ref / 1e6:.3f} MFLOP; PixelLTAE executes "
        f"{executed_train / 1e6:.3f} MFLOP (forward + backward, counted)"
    )
    print()
    header = f"{'':32s} {'px/s best':>10s} {'(median)':>10s} {'effective':>10s} {'actual':>10s}"
    print(header + "\n" + "-" * len(header))
    for name, (best, median), ref_flops, actual_flops in rows:
        print(
            f"{name:32s} {best:10,.0f} {median:10,.0f} "
            f"{fraction(ref_flops, best)} {fraction(actual_flops, best)}"
        )
    print(
        "effective = reference FLOPs x best px/s / peak; actual = executed FLOPs x best px/s / peak"
    )
    print()
    print("inference + attention by batch size:  px/s best   (median)   effective")
    for size, (best, median) in sweep.items():
        print(f"    {size:6d} {best:31,.0f} {median:10,.0f} {fraction(ref, best)}")
    print(f"    best batch size: {max(sweep, key=lambda size: sweep[size][0])}")
    print()
    print("end-to-end training on a pixel cache (synthetic, T = 38-61):  px/s best   (median)")
    print(
        f"    model only, batches already in memory  {model_only[0]:20,.0f} {model_only[1]:10,.0f}"
    )
    print(f"    cache -> model (memory-mapped reads)   {cached[0]:20,.0f} {cached[1]:10,.0f}")
    print(f"    end-to-end / model only: {cached[1] / model_only[1]:.1%} (medians; target >= 90 %)")


if __name__ == "__main__":
    main()
