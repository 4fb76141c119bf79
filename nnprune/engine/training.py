"""Training and fine-tuning: SGD with momentum, cosine or step schedule, best-by-validation.

The loop is deliberately plain. Each epoch ends with an atomically written resume state
(`last.pt`: model, optimiser, scheduler, RNG states, epoch, best so far), so a killed job
restarted with the same command continues from the last complete epoch and, on the CPU, reaches
bit-identical weights.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnprune.engine.device import autocast_dtype
from nnprune.engine.metrics import accuracy
from nnprune.engine.progress import progress_bar
from nnprune.errors import UserError
from nnprune.files import load_torch, save_torch
from nnprune.plan.specs import TrainConfig  # defined with the step specs (torch-free); imported from here too

# On a terminal, the progress bar's running loss is read from the device (one host sync) after an
# epoch's first batch and then at most this often, never once per step.
LOSS_REFRESH_SECONDS = 2.0


def training_forward(model: nn.Module, config: TrainConfig) -> Callable:
    """The callable that runs the training forward pass: the model itself, or with `compile` a
    torch.compile'd view of it (sharing its parameters; the model stays the one to save, select
    and evaluate). Compiling pays off on CUDA with fixed-shape batches (drop the last one)."""
    if config.compile == "none":
        return model
    return torch.compile(model, mode=None if config.compile == "default" else config.compile)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, batches_per_epoch: int | None = None):
    """The learning-rate schedule; `cosine-batch` is stepped after every batch (fit does), over
    epochs x batches_per_epoch steps, the others once per epoch."""
    if config.schedule == "cosine-batch":
        steps = max(config.epochs, 1) * max(batches_per_epoch or 1, 1)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    milestones = [max(1, int(config.epochs * 0.5)), max(1, int(config.epochs * 0.75))]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class NonFiniteLoss(UserError):
    pass


def run_fingerprint(model: nn.Module, config: TrainConfig, inputs: dict | None = None) -> str:
    """sha256 of the starting weights, the training config and `inputs` (data, seed): a resume
    state is only continued by the run that wrote it."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"config": asdict(config), "inputs": inputs or {}},
                             sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TrainState:
    """What a resume state carries besides the model, optimiser, scheduler and RNG states."""
    best_state: dict
    start_epoch: int = 0
    best_acc: float = -1.0
    best_epoch: int = -1
    history: list = field(default_factory=list)


@dataclass
class Optimisation:
    """The parts one epoch of training uses: the optimiser, schedule, loss and AMP settings."""
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module
    scaler: torch.amp.GradScaler
    forward: Callable
    autocast_device: str
    amp_dtype: torch.dtype
    amp: bool
    per_batch: bool             # the schedule steps after every batch (cosine-batch)


def make_optimisation(model: nn.Module, config: TrainConfig, device: torch.device,
                      per_epoch: int | None) -> Optimisation:
    # fused: one kernel for the whole update on CUDA (the foreach path launches several)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=False,
                                fused=True if device.type == "cuda" else None)
    amp_dtype = autocast_dtype(device, config.amp_dtype)
    # Loss scaling only for float16 on CUDA; its overflow check reads a flag on the host each step.
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda"
                                  and amp_dtype == torch.float16)
    return Optimisation(optimizer, make_scheduler(optimizer, config, per_epoch),
                        nn.CrossEntropyLoss(label_smoothing=config.label_smoothing), scaler,
                        training_forward(model, config), "cuda" if device.type == "cuda" else "cpu",
                        amp_dtype, config.amp, config.schedule == "cosine-batch")


def train_one_epoch(model: nn.Module, opt: Optimisation, batch_iterator, device: torch.device,
                    description: str, per_epoch: int | None) -> tuple[float, int]:
    """One pass over `batch_iterator`; returns (mean loss, images seen).

    Nothing in this loop waits for the device: no .item(), no host-made tensors (but the
    terminal's progress bar, every LOSS_REFRESH_SECONDS); the mean loss is read once at the end."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    batches = images = 0
    bar = progress_bar(batch_iterator, description, "batch", per_epoch)
    loss_shown = -math.inf
    for inputs, labels in batch_iterator if bar is None else bar:
        with torch.autocast(opt.autocast_device, dtype=opt.amp_dtype, enabled=opt.amp):
            loss = opt.loss_fn(opt.forward(inputs), labels)
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        if opt.per_batch:
            opt.scheduler.step()
        loss_sum += loss.detach()
        batches += 1
        images += labels.numel()
        if bar is not None and time.perf_counter() - loss_shown > LOSS_REFRESH_SECONDS:
            bar.set_postfix_str(f"loss {(loss_sum / batches).item():.4f}", refresh=False)
            loss_shown = time.perf_counter()
    return (loss_sum / max(batches, 1)).item(), images


def evaluate(model: nn.Module, val_batches, config: TrainConfig) -> float:
    """Validation accuracy (%) after an epoch."""
    return accuracy(model, val_batches, amp=config.amp)


def _resume(resume_path: Path, fingerprint: str, model: nn.Module, opt: Optimisation, train_batches,
            log: Callable[[str], None], epochs: int) -> TrainState:
    """The state to continue from: the resume file's when this run wrote it, else a fresh one."""
    state = load_torch(resume_path, "resume state") if resume_path.exists() else None
    if state is not None and (not isinstance(state, dict) or state.get("fingerprint") != fingerprint):
        # E.g. the config changed (more epochs, another lr) and Snakemake reruns the job: the old
        # state would silently continue a different run.
        log(f"ignoring {resume_path}: written by a run with other settings or starting weights")
        state = None
    if state is None:
        return TrainState(best_state=copy.deepcopy(model.state_dict()))
    model.load_state_dict(state["model"])
    opt.optimizer.load_state_dict(state["optimizer"])
    opt.scheduler.load_state_dict(state["scheduler"])
    train_batches.generator.set_state(state["batch_rng"])
    _set_rng_state(state["rng"])
    if state.get("scaler"):
        opt.scaler.load_state_dict(state["scaler"])   # fp16 loss scale: part of an exact resume
    log(f"resumed from {resume_path} at epoch {state['epoch']}/{epochs}")
    return TrainState(state["best_model"], state["epoch"], state["best_acc"], state["best_epoch"],
                      state["history"])


def _save_resume(resume_path: Path, model: nn.Module, opt: Optimisation, train_batches, run: TrainState,
                 epoch: int, config: TrainConfig, fingerprint: str) -> None:
    save_torch(resume_path, {
        "model": model.state_dict(), "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(), "batch_rng": train_batches.generator.get_state(),
        "rng": _rng_state(), "epoch": epoch, "best_acc": run.best_acc,
        "best_epoch": run.best_epoch, "best_model": run.best_state, "history": run.history,
        "config": asdict(config), "fingerprint": fingerprint, "scaler": opt.scaler.state_dict()})


def fit(model: nn.Module, train_batches, val_batches, config: TrainConfig, resume_path: Path,
        device: torch.device, log: Callable[[str], None] = print, run_inputs: dict | None = None) -> dict:
    """Train `model` in place; at the end it holds the best-by-validation weights (with a single
    epoch there is nothing to select: no validation pass, the final weights, best_val_acc None).

    Returns a summary: epochs run, best epoch, best validation accuracy (%), per-epoch history,
    train time (s) and images/s. `resume_path` holds the per-epoch resume state; it is continued
    only when it was written by the same run (same starting weights, config and `run_inputs`),
    otherwise training starts afresh and overwrites it.
    """
    config.validate()
    fingerprint = run_fingerprint(model, config, run_inputs)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    epoch_batches = getattr(train_batches, "epoch", None)
    try:    # batches per epoch, for the progress bar and a per-batch schedule
        per_epoch = min(len(train_batches), config.batches_per_epoch or len(train_batches))
    except TypeError:
        per_epoch = config.batches_per_epoch
    opt = make_optimisation(model, config, device, per_epoch)
    run = _resume(resume_path, fingerprint, model, opt, train_batches, log, config.epochs)
    train_seconds, images_seen = 0.0, 0
    for epoch in range(run.start_epoch, config.epochs):
        started = time.perf_counter()
        batch_iterator = (epoch_batches(config.batches_per_epoch) if epoch_batches is not None
                          else itertools.islice(train_batches, config.batches_per_epoch))
        mean_loss, images = train_one_epoch(model, opt, batch_iterator, device,
                                            f"epoch {epoch + 1}/{config.epochs}", per_epoch)
        images_seen += images
        if not math.isfinite(mean_loss):
            kept = (f"the last good state (epoch {epoch}) is kept in {resume_path}" if epoch > 0
                    else "no epoch of this run finished")
            raise NonFiniteLoss(
                f"training loss became {mean_loss} in epoch {epoch + 1}; {kept}",
                "lower the learning rate (--lr, or lr in the config's train/finetune section) "
                "or disable amp, then rerun")
        if not opt.per_batch:
            opt.scheduler.step()
        train_seconds += time.perf_counter() - started
        if config.epochs > 1:
            val_acc = evaluate(model, val_batches, config)
            if val_acc > run.best_acc:
                run.best_acc, run.best_epoch = val_acc, epoch + 1
                run.best_state = copy.deepcopy(model.state_dict())
        else:  # a single epoch leaves nothing to select: no validation pass (a short fine-tune's
            val_acc, run.best_epoch = None, 1   # largest cost after its training batches)
            run.best_state = copy.deepcopy(model.state_dict())
        run.history.append({"epoch": epoch + 1, "loss": mean_loss, "val_acc": val_acc,
                            "lr": opt.optimizer.param_groups[0]["lr"],
                            "seconds": round(time.perf_counter() - started, 3)})  # with validation
        shown = "not needed" if val_acc is None else f"{val_acc:.2f}%"
        log(f"epoch {epoch + 1}/{config.epochs} loss {mean_loss:.4f} val {shown} "
            f"({time.perf_counter() - started:.1f}s)")
        _save_resume(resume_path, model, opt, train_batches, run, epoch + 1, config, fingerprint)
    if config.epochs > 0:
        model.load_state_dict(run.best_state)
    return {"epochs": config.epochs, "best_epoch": run.best_epoch,
            "best_val_acc": run.best_acc if run.best_acc >= 0 else None,
            "history": run.history, "train_seconds": train_seconds,
            "images_per_second": images_seen / train_seconds if train_seconds else None}
