"""Train a pixel-wise LTAE on a run's pixel cache: seeded, resumable, selected on val mIoU.

Per epoch: one pass over the train pixels in shuffled length-bucketed batches, then a full
pass over the val pixels. The epoch's row goes to the history; the model with the best val
mIoU is kept; training stops early when val mIoU has not improved for ``patience`` epochs.
After every epoch the whole state (model, optimiser, schedule, RNG, history, best model) is
saved, so a killed run resumes from its last finished epoch and ends with the same result.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from am4cm.data import facts
from am4cm.evaluation import ConfusionAccumulator, scores_from_confusion
from am4cm.io import atomic_path, write_csv
from am4cm.models.ltae import LTAEConfig, PixelLTAE, count_parameters
from am4cm.training.batches import Batch, batch_indices, iterate_batches
from am4cm.training.cache import PixelSplit, open_split, read_cache_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the learning rate follows a linear warm-up then a cosine decay."""

    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    patience: int = 8
    seed: int = 0
    num_threads: int = 0
    device: str = "auto"
    model: LTAEConfig = field(default_factory=LTAEConfig)

    def fingerprint(self, cache_summary: dict[str, object]) -> str:
        """Hash of the settings and the data, so a resume state from other settings is ignored."""
        text = json.dumps([asdict(self), cache_summary], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + np.cos(np.pi * min(1.0, progress)))


def autocast(device: torch.device) -> torch.autocast:
    """Mixed precision (bfloat16) on CUDA; full precision on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def make_model(config: TrainConfig, summary: dict[str, object]) -> PixelLTAE:
    """A freshly initialised model, seeded, normalising with the cache's train-fold statistics."""
    torch.manual_seed(config.seed)
    return PixelLTAE(config.model, summary["band_mean"], summary["band_std"])


def evaluate(
    model: nn.Module, split: PixelSplit, batch_size: int, device: torch.device
) -> tuple[float, np.ndarray]:
    """Mean loss and 20 x 20 confusion matrix of ``model`` over every pixel of ``split``."""
    model.eval()
    criterion = nn.CrossEntropyLoss(ignore_index=facts.VOID_CLASS, reduction="sum")
    confusion = ConfusionAccumulator()
    total_loss, counted = 0.0, 0
    with torch.inference_mode(), autocast(device):
        for batch in iterate_batches(split, batch_size):
            batch = batch.to(device)
            logits = model(batch.x, batch.days, batch.mask).float()
            total_loss += float(criterion(logits, batch.label))
            counted += int((batch.label != facts.VOID_CLASS).sum())
            confusion.add(batch.label.cpu().numpy(), predict_classes(logits).cpu().numpy())
    return total_loss / max(counted, 1), confusion.value()


def predict_classes(logits: torch.Tensor) -> torch.Tensor:
    """Arg-max over the scored classes 0-18: void is never a prediction, as it gets no loss."""
    return logits[:, : facts.VOID_CLASS].argmax(dim=1)


def train_epoch(
    model: nn.Module,
    split: PixelSplit,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    epoch: int,
    device: torch.device,
    progress: bool,
) -> float:
    """One shuffled pass over the train pixels; returns the mean loss per labelled pixel."""
    model.train()
    criterion = nn.CrossEntropyLoss(ignore_index=facts.VOID_CLASS, reduction="sum")
    rng = np.random.default_rng([config.seed, epoch])
    total_loss, counted = 0.0, 0
    bar = tqdm(total=len(split), desc=f"epoch {epoch}", unit="px", disable=not progress)
    for batch in iterate_batches(split, config.batch_size, rng):
        batch: Batch = batch.to(device)
        with autocast(device):
            logits = model(batch.x, batch.days, batch.mask)
        n_labelled = int((batch.label != facts.VOID_CLASS).sum())
        loss = criterion(logits.float(), batch.label)
        optimiser.zero_grad(set_to_none=True)
        (loss / max(n_labelled, 1)).backward()
        optimiser.step()
        scheduler.step()
        total_loss += float(loss.detach())
        counted += n_labelled
        bar.update(len(batch.label))
    bar.close()
    return total_loss / max(counted, 1)


def checkpoint_payload(
    model: PixelLTAE, config: TrainConfig, summary: dict[str, object], record: dict[str, float]
) -> dict[str, object]:
    """What ``model.pt`` holds: weights, model config, band statistics, class names, provenance.

    Only tensors, numbers, strings, lists and dicts, so ``torch.load(weights_only=True)`` reads it.
    """
    return {
        "state_dict": {name: tensor.cpu() for name, tensor in model.state_dict().items()},
        "model_config": asdict(config.model),
        "band_mean": list(summary["band_mean"]),
        "band_std": list(summary["band_std"]),
        "class_names": facts.class_names(),
        "run": summary["run"],
        "train_config": {k: v for k, v in asdict(config).items() if k != "model"},
        "selected_epoch": record["epoch"],
        "val_miou": record["val_miou"],
        "val_oa": record["val_oa"],
    }


def load_model(path: Path | str, device: torch.device | str = "cpu") -> PixelLTAE:
    """Load a ``model.pt`` written by :func:`train` into an eval-mode model."""
    payload = torch.load(path, map_location=device, weights_only=True)
    model = PixelLTAE(
        LTAEConfig(**payload["model_config"]), payload["band_mean"], payload["band_std"]
    )
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def train(
    cache: Path | str,
    model_path: Path | str,
    history_path: Path | str,
    state_path: Path | str,
    config: TrainConfig,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Train on the cache of a run; write ``model.pt`` and the per-epoch history CSV.

    ``state_path`` holds the resume state between epochs and is removed once training ends.
    ``on_epoch_end`` is called after each saved epoch (tests use it to simulate a kill).
    """
    summary = read_cache_summary(cache)
    train_split, val_split = open_split(cache, "train"), open_split(cache, "val")
    device = pick_device(config.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.use_deterministic_algorithms(device.type == "cpu")

    model = make_model(config, summary).to(device)
    optimiser = torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=True,
    )
    steps_per_epoch = len(batch_indices(np.asarray(train_split.length), config.batch_size, None))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: learning_rate_factor(
            step, config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch
        ),
    )
    log.info(
        "run %s on %s: %d train / %d val pixels, %d parameters",
        summary["run"],
        device,
        len(train_split),
        len(val_split),
        count_parameters(model),
    )

    fingerprint = config.fingerprint(summary)
    history: list[dict[str, float]] = []
    best: dict[str, object] | None = None
    state_path = Path(state_path)
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        if state["fingerprint"] == fingerprint:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            history, best = state["history"], state["best"]
            log.info("resuming after epoch %d from %s", len(history), state_path)
        else:
            log.info("ignoring %s: it was saved with other settings or data", state_path)

    for epoch in range(len(history) + 1, config.epochs + 1):
        if best is not None and epoch - best["record"]["epoch"] > config.patience:
            log.info(
                "early stop: val mIoU has not improved since epoch %d", best["record"]["epoch"]
            )
            break
        start = time.perf_counter()
        train_loss = train_epoch(
            model, train_split, optimiser, scheduler, config, epoch, device, progress
        )
        train_seconds = time.perf_counter() - start
        val_loss, confusion = evaluate(model, val_split, config.batch_size, device)
        scores = scores_from_confusion(confusion)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_oa": scores["overall_accuracy"],
            "val_miou": scores["mean_iou"],
            "learning_rate": optimiser.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start,
            "train_pixels_per_second": len(train_split) / train_seconds,
        }
        history.append(record)
        log.info(
            "epoch %d: train loss %.4f, val loss %.4f, val OA %.3f, val mIoU %.3f, %.0f px/s",
            epoch,
            train_loss,
            val_loss,
            record["val_oa"],
            record["val_miou"],
            record["train_pixels_per_second"],
        )
        if best is None or record["val_miou"] > best["record"]["val_miou"]:
            best = {"record": record, "model": copy.deepcopy(model.state_dict())}
        with atomic_path(state_path) as tmp:
            torch.save(
                {
                    "fingerprint": fingerprint,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "history": history,
                    "best": best,
                },
                tmp,
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    model.load_state_dict(best["model"])
    log.info(
        "selected epoch %d (val mIoU %.3f)", best["record"]["epoch"], best["record"]["val_miou"]
    )
    with atomic_path(model_path) as tmp:
        torch.save(checkpoint_payload(model, config, summary, best["record"]), tmp)
    frame = pd.DataFrame(history)
    write_csv(frame, history_path)
    state_path.unlink(missing_ok=True)
    return frame


def train_config_from_dicts(training: dict[str, object], model: dict[str, object]) -> TrainConfig:
    """A :class:`TrainConfig` from the ``training`` and ``model`` sections of the workflow config."""
    return TrainConfig(**training, model=LTAEConfig(**model))
