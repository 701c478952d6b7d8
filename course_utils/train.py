"""The training engine: the Dense2Net report's recipe, resumable, on one device or many.

In a notebook, with a model and data you already have::

    from course_utils.train import TrainConfig, fit
    result = fit(model, data, TrainConfig(epochs=5, schedule="cosine", out="runs/demo"))
    result.history[-1]["val_acc"], result.summary["test_acc"]

From the command line (the report's appendix, section 7, with its options spelled out)::

    python -m course_utils.train --model dense2net121 --dataset cifar100 --epochs 100 \\
        --lr 0.1 --scale 4 --groups 1 --no-se --no-cutout --augment --out runs/d2n
    python -m course_utils.train ... --resume          # the report's --r
    torchrun --nproc_per_node 4 -m course_utils.train ...   # DDP, same code path

This module holds :func:`fit` (and its phases), :func:`train_one_epoch`,
:func:`evaluate`, :func:`run` and the command line (one option per TrainConfig field);
the rest of the engine lives next to it, and every public name of it is importable from
here too (course_utils/ENGINE.md draws the map): :mod:`~course_utils.config`
(TrainConfig: every default says where it comes from; presets such as
``preset("densenet_paper")``, the DenseNet paper's own recipe),
:mod:`~course_utils.devices` (CUDA / MPS / CPU, AMP, channels_last, DDP under torchrun,
threads and seeding), :mod:`~course_utils.schedule` (LR, plateau, early stopping),
:mod:`~course_utils.checkpoint` (what a run leaves in ``OUT``: metrics.jsonl,
checkpoint.pt, best.pt, summary.json, all written atomically; resume) and
:mod:`~course_utils.summary` (what a run records: the model and the data as trained).
Accuracies are fractions in [0, 1] in the files; the printed lines show percent.

On the CPU the command line makes idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE):
on a CPU shared with other jobs spinning threads made training up to 6x slower; on a
machine of your own OMP_WAIT_POLICY=ACTIVE can be faster (benchmarks/train.py
measures both).
"""

from __future__ import annotations

if __name__ == "__main__":
    # The command line only, and before torch loads OpenMP: idle OpenMP threads sleep
    # instead of spinning. On a CPU shared with other processes spinning threads made
    # training up to 6x slower (benchmarks/train.py measures it); an explicit
    # OMP_WAIT_POLICY in the environment wins.
    import os as _os

    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import difflib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .checkpoint import (  # noqa: F401  (re-exported)
    CHECKPOINT_FORMAT, RESUME_MUST_MATCH, CheckpointError, ResumeState, check_out_folder,
    checkpoint_note, load_checkpoint, open_run_folder, read_metrics, rng_state, save_torch,
    set_rng_state, to_json, write_metrics)
from .config import (  # noqa: F401  (re-exported)
    AMP_CHOICES, CHANNELS_LAST_CHOICES, EARLY_STOP_METRICS, PRESETS, SCHEDULES, ConfigError,
    OPTION_GROUPS, TrainConfig, add_field_options, check_fields, option_for, preset,
    values_from_args)
from .data import SYNTHETIC, SYNTHETIC_CLASSES, SYNTHETIC_SIZES  # noqa: F401  (re-exported)
from .devices import (  # noqa: F401  (re-exported)
    AmpSettings, DistInfo, Placement, all_reduce_, amp_settings, backend_flags, barrier,
    broadcast_buffers, current_dist, describe_device, dist_from_env, init_distributed,
    placement, prepare_process, source_commit, use_channels_last, wrap_model)
from .files import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from .schedule import EarlyStopping, LRSchedule, PlateauRule, lr_factor  # noqa: F401
from .summary import (  # noqa: F401  (re-exported)
    NO_BEST, FitResult, best_of, count_macs_note, data_source, epoch_line, model_record,
    recorded_config)

__all__ = [
    "AMP_CHOICES", "PRESETS", "SCHEDULES", "AmpSettings", "CheckpointError", "ConfigError",
    "DistInfo", "FitResult", "LRSchedule", "NonFiniteLossError", "TrainConfig",
    "amp_settings", "atomic_write_bytes", "atomic_write_text", "backend_flags",
    "config_from_args", "dist_from_env", "evaluate", "fit", "load_checkpoint", "lr_factor",
    "main", "make_data", "make_model", "preset", "read_metrics", "run", "train_one_epoch",
    "use_channels_last",
]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the run stopped before using it."""

    def __init__(self, epoch: int, step: int, steps: int, value: float, checkpoint: str):
        self.epoch, self.step, self.value, self.checkpoint = epoch, step, value, checkpoint
        super().__init__(
            f"the training loss is {value} at epoch {epoch}, step {step} of {steps}; "
            f"the run stopped before this step changed the weights. {checkpoint} "
            "Try a lower --lr, --amp off, or --grad-clip, then --resume.")


# --------------------------------------------------------------------------------------
# One epoch, one evaluation
# --------------------------------------------------------------------------------------
def _callbacks_call(callbacks, name, *args) -> None:
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(*args)


def _accuracy_counts(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Correct top-1 and top-5 counts (top-k with k = min(5, classes))."""
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices  # (B, k)
    hit = top == y[:, None]  # (B, k)
    return hit[:, 0].sum(), hit.any(dim=1).sum()


def _sums_row(loss_sum: torch.Tensor, c1, c5, n: float, device) -> torch.Tensor:
    return torch.stack([loss_sum.double(), c1.double(), c5.double(),
                        torch.tensor(n, dtype=torch.float64, device=device)])


@torch.no_grad()
def evaluate(model: nn.Module, loader, *, device=None, amp: Optional[AmpSettings] = None,
             channels_last: bool = False, dist: Optional[DistInfo] = None) -> dict:
    """Mean cross-entropy, top-1 and top-5 accuracy of `model` over `loader`.

    Under DDP every process takes every world_size-th batch and the sums are reduced, so
    each image counts once. The model's train/eval mode is restored afterwards.
    """
    dist = dist or DistInfo()
    device = device or next(model.parameters()).device
    where = Placement(device, amp or AmpSettings(False, None, False), channels_last, dist)
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, n
    try:
        for i, (x, y) in enumerate(loader):
            if i % dist.world_size != dist.rank:
                continue
            x, y = where.to_device(x), where.to_device(y)
            with where.autocast():
                logits = model(x)
            logits = logits.float()
            c1, c5 = _accuracy_counts(logits, y)
            sums += _sums_row(F.cross_entropy(logits, y, reduction="sum"), c1, c5,
                              float(len(y)), device)
    finally:
        model.train(was_training)
    loss, c1, c5, n = all_reduce_(sums, dist).tolist()
    n = max(n, 1.0)
    return {"loss": loss / n, "acc": c1 / n, "top5": c5 / n, "images": int(n)}


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer,
                    schedule: LRSchedule, where: Placement, *, epoch: int,
                    scaler: Optional[torch.amp.GradScaler] = None, label_smoothing: float = 0.0,
                    grad_clip: Optional[float] = None, callbacks: Iterable = (),
                    progress: bool = False, checkpoint: str = "") -> dict:
    """One pass of SGD over `loader` (epoch `epoch`, 0-based): the LR of every step from
    `schedule` (an attached LRSchedule), cross-entropy with `label_smoothing`, optional
    gradient clipping. Returns the epoch's mean loss, top-1 and top-5 accuracy, images,
    the last step's LR and the seconds it took. A NaN/inf loss raises
    NonFiniteLossError (naming `checkpoint`'s state) before it changes the weights."""
    from tqdm.auto import tqdm

    scaler = scaler or torch.amp.GradScaler(where.device.type, enabled=False)
    t0 = time.perf_counter()
    model.train()
    steps = len(loader)
    sums = torch.zeros(4, dtype=torch.float64, device=where.device)  # loss, top1, top5, n
    lr = schedule.current_lr()
    bar = tqdm(total=steps, desc=f"epoch {epoch + 1}", unit="batch", leave=False,
               disable=not progress, dynamic_ncols=True)
    for step, (x, y) in enumerate(loader):
        x, y = where.to_device(x), where.to_device(y)
        lr = schedule.current_lr()
        with where.autocast():
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        finite = torch.isfinite(loss.detach()).to(torch.int32)
        if int(all_reduce_(finite, where.dist, op="min").item()) == 0:
            raise NonFiniteLossError(epoch + 1, step + 1, steps, float(loss.detach()), checkpoint)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        with torch.no_grad():
            c1, c5 = _accuracy_counts(logits.detach().float(), y)
            n = float(len(y))
            sums += _sums_row(loss.detach().double() * n, c1, c5, n, where.device)
        if progress:
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{lr:.3g}")
        _callbacks_call(callbacks, "on_step_end", epoch + 1, step + 1, steps, loss.detach())
    bar.close()
    tr_loss, c1, c5, n_all = all_reduce_(sums, where.dist).tolist()
    if where.device.type == "cuda":
        torch.cuda.synchronize(where.device)
    n = max(n_all, 1.0)
    return {"loss": tr_loss / n, "acc": c1 / n, "top5": c5 / n, "images": n_all, "lr": lr,
            "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------
# fit, phase by phase
# --------------------------------------------------------------------------------------
@dataclass
class _Run:
    """Everything one fit call holds while it trains."""

    config: TrainConfig
    record: TrainConfig  # what summary.json and checkpoint.pt record (summary module)
    where: Placement
    raw: nn.Module
    train_model: nn.Module
    eval_model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler
    steps_per_epoch: int
    out: Optional[Path] = None
    resume: ResumeState = field(default_factory=ResumeState)
    best: dict = field(default_factory=lambda: dict(NO_BEST))
    early: EarlyStopping = None
    status: str = "completed"
    base: dict = field(default_factory=dict)  # what summary.json says before training
    show: bool = False  # progress bars
    t_start: float = 0.0

    @property
    def history(self) -> list:
        return self.resume.history

    @property
    def speak(self) -> bool:
        return self.config.verbose and self.where.dist.is_main

    def log(self, text: str) -> None:
        if self.show:
            from tqdm.auto import tqdm

            tqdm.write(text)
        else:
            print(text, flush=True)

    def evaluate(self, loader) -> dict:
        w = self.where
        return evaluate(self.eval_model, loader, device=w.device, amp=w.amp,
                        channels_last=w.channels_last, dist=w.dist)


def _progress_enabled(config: TrainConfig, dist: DistInfo) -> bool:
    env = os.environ.get("COURSE_PROGRESS", "").strip().lower()
    return config.progress and dist.is_main and env not in ("0", "false", "no", "off")


def _start(model: nn.Module, data, config: TrainConfig) -> _Run:
    """Devices, seed, the model in place, optimizer, LR schedule and grad scaler."""
    dist = current_dist()
    record = recorded_config(config, model, data, dist.world_size)
    device = prepare_process(config, dist)
    where = placement(config, device, dist)
    raw, train_model, eval_model = wrap_model(model, config, where)
    optimizer = torch.optim.SGD(raw.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    steps = len(data.train)
    return _Run(config, record, where, raw, train_model, eval_model, optimizer,
                LRSchedule(config, steps), torch.amp.GradScaler(device.type, enabled=where.amp.scaler),
                steps, Path(config.out) if config.out else None,
                early=EarlyStopping(config.early_stop_patience, config.early_stop_metric),
                show=_progress_enabled(config, dist))


def _resume(run: _Run) -> None:
    """Open the run folder; continue from its checkpoint where there is one to resume."""
    dist = run.where.dist
    run.resume = open_run_folder(run.config, run.record.as_dict(), is_main=dist.is_main,
                                 device=run.where.device)
    ck = run.resume.checkpoint
    if ck is not None:
        run.raw.load_state_dict(ck["model"])
        run.optimizer.load_state_dict(ck["optimizer"])
        run.schedule.load_state_dict(ck["scheduler"])
        run.scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        run.best = dict(ck["best"])
        run.early.load_state_dict(ck["early_stop"])
        if ck.get("stop_reason") == "early_stopped":  # an early-stopped run stays stopped
            run.status = "early_stopped"
    run.schedule.attach(run.optimizer, run.resume.epoch)


def _describe(run: _Run, data) -> dict:
    """What summary.json says about the run before it trains."""
    example = next(iter(data.val))[0][:1].to(run.where.device)
    dist = run.where.dist
    macs, macs_note = count_macs_note(run.raw, example) if dist.is_main else (None, "")
    w = run.where
    return {
        "config": run.record.as_dict(),
        "model_class": type(run.raw).__name__,
        "params": sum(p.numel() for p in run.raw.parameters()),
        "macs": macs,
        "macs_note": macs_note,
        "data": data_source(data),
        "device": describe_device(w.device, dist),
        "precision": w.amp.describe(),
        "channels_last": w.channels_last,
        "compiled": run.config.compile,
        "steps_per_epoch": run.steps_per_epoch,
        # the code this process runs: the commit when it started training (a commit made
        # while it trains changes nothing it has imported); its provenance (reference.publish)
        "git_commit": source_commit(),
    }


def _announce(run: _Run) -> None:
    w, b = run.where, run.base
    if run.speak:
        run.log(f"[train] {b['model_class']} ({b['params']:,} params) on {w.device}, "
                f"{w.amp.describe()}{', channels_last' if w.channels_last else ''}"
                f"{', DDP x%d' % w.dist.world_size if w.dist.active else ''}; "
                f"data: {b['data'].get('label', '')}")


def _epoch_record(epoch: int, train: dict, val: dict, seconds: float) -> dict:
    return {
        "epoch": epoch + 1,
        "train_loss": train["loss"], "train_acc": train["acc"], "train_top5": train["top5"],
        "val_loss": val["loss"], "val_acc": val["acc"], "val_top5": val["top5"],
        "lr": train["lr"], "seconds": seconds, "train_seconds": train["seconds"],
        "images_per_s": train["images"] / max(train["seconds"], 1e-9),
    }


def _save_epoch(run: _Run, epoch: int, improved: bool, stop_reason: Optional[str]) -> None:
    """best.pt when the epoch improved, checkpoint.pt and metrics.jsonl always (rank 0)."""
    if run.out is None or not run.where.dist.is_main:
        return
    if improved and run.config.save_best:
        save_torch({"model": run.raw.state_dict(), "epoch": epoch + 1,
                    "val_acc": run.best["val_acc"]}, run.out / "best.pt")
    save_torch({
        "format": CHECKPOINT_FORMAT, "epoch": epoch + 1,
        "model": run.raw.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.schedule.state_dict(), "scaler": run.scaler.state_dict(),
        "rng": rng_state(), "best": run.best, "early_stop": run.early.state_dict(),
        "stop_reason": stop_reason, "history": run.history, "config": run.record.as_dict(),
    }, run.out / "checkpoint.pt")
    write_metrics(run.out, run.history)


def _stop_reason(run: _Run, epoch: int, record: dict) -> Optional[str]:
    reason = run.early.update(record)
    c = run.config
    elapsed = time.perf_counter() - run.t_start
    if (reason is None and c.time_limit_s is not None and epoch + 1 < c.epochs
            and elapsed + record["seconds"] > c.time_limit_s):
        reason = "time_limit"
    return reason


def _train_epochs(run: _Run, data, callbacks: list) -> None:
    """Epochs from the resumed one to config.epochs, or until a stop rule says so."""
    from tqdm.auto import tqdm

    c = run.config
    start = c.epochs if run.status == "early_stopped" else run.resume.epoch
    bar = tqdm(total=c.epochs, initial=start, desc="epochs", unit="ep", disable=not run.show,
               dynamic_ncols=True)
    try:
        for epoch in range(start, c.epochs):
            t0 = time.perf_counter()
            if hasattr(data, "set_epoch"):
                data.set_epoch(epoch)  # new shuffle and augmentation draws (data.py)
            train = train_one_epoch(
                run.train_model, data.train, run.optimizer, run.schedule, run.where,
                epoch=epoch, scaler=run.scaler, label_smoothing=c.label_smoothing,
                grad_clip=c.grad_clip, callbacks=callbacks, progress=run.show,
                checkpoint=checkpoint_note(run.resume.path, len(run.history)))
            broadcast_buffers(run.raw, run.where.dist)  # BN statistics: rank 0's everywhere
            val = run.evaluate(data.val)
            record = _epoch_record(epoch, train, val, time.perf_counter() - t0)
            run.history.append(record)
            run.schedule.epoch_end(val["loss"], epoch)
            improved = val["acc"] > run.best["val_acc"]
            if improved:
                run.best = {"epoch": epoch + 1, "val_acc": val["acc"], "val_loss": val["loss"]}
            reason = _stop_reason(run, epoch, record)
            _save_epoch(run, epoch, improved, reason)
            if run.speak:
                run.log(epoch_line(record, c.epochs))
            bar.update(1)
            bar.set_postfix(val_acc=f"{100 * val['acc']:.1f}%")
            _callbacks_call(callbacks, "on_epoch_end", record, run.history)
            if reason is not None:
                run.status = reason
                if run.speak:
                    run.log(f"[train] stopping after epoch {epoch + 1}: {reason.replace('_', ' ')}")
                break
    finally:
        bar.close()


def _write_failure(run: _Run, error: Exception) -> None:
    if run.out is not None and run.where.dist.is_main:
        b = run.best
        atomic_write_text(run.out / "summary.json", to_json(dict(
            run.base, status="failed", error=str(error), epochs_run=len(run.history),
            best_epoch=b["epoch"], best_val_acc=b["val_acc"] if b["epoch"] else None,
            history_tail=run.history[-3:])))


def _test(run: _Run, data) -> tuple[dict, Optional[dict]]:
    """Test metrics of the final weights, and of the best-validation weights (the same
    dict when the last epoch is the best; None when there is no best.pt to load).
    A bundle whose ``test`` is None (a study that chooses on validation and tests its
    choice once, course_utils.compare) is not tested: the metrics are None."""
    if data.test is None:
        return {"acc": None, "top5": None, "loss": None, "images": 0}, None
    test = run.evaluate(data.test)
    hist, best = run.history, run.best["epoch"]
    if best is None or not hist:
        return test, None
    if best == hist[-1]["epoch"]:
        return test, test
    best_pt = run.out / "best.pt" if run.out is not None else None
    if not (run.config.save_best and best_pt is not None and best_pt.exists()):
        return test, None
    final_state = {k: v.detach().clone() for k, v in run.raw.state_dict().items()}
    run.raw.load_state_dict(load_checkpoint(best_pt, map_location=run.where.device)["model"])
    test_best = run.evaluate(data.test)
    run.raw.load_state_dict(final_state)
    return test, test_best


def _finish(run: _Run, data) -> dict:
    """The final test, summary.json and the closing line."""
    test, test_best = _test(run, data)
    last = run.history[-1] if run.history else {}
    summary = dict(
        run.base, status=run.status, epochs_run=len(run.history), **best_of(run.best, run.history),
        final_val_acc=last.get("val_acc"), final_train_acc=last.get("train_acc"),
        test_acc=test["acc"], test_top5=test["top5"], test_loss=test["loss"],
        test_images=test["images"],
        test_acc_best=None if test_best is None else test_best["acc"],
        wall_seconds_this_session=time.perf_counter() - run.t_start,
        train_seconds_total=sum(r["seconds"] for r in run.history),
        # when this run finished: its provenance (reference.publish), with git_commit above
        finished=time.strftime("%Y-%m-%d %H:%M:%S %z"),
    )
    if run.out is not None and run.where.dist.is_main:
        atomic_write_text(run.out / "summary.json", to_json(summary))
    if run.speak:
        extra = ("" if test_best is None or test_best is test else
                 f" (best-validation weights, epoch {run.best['epoch']}: "
                 f"{100 * test_best['acc']:.2f}%)")
        tested = (f"test accuracy {100 * test['acc']:.2f}% on {test['images']} images{extra}"
                  if test["acc"] is not None else "not tested (no test split given)")
        run.log(f"[train] {run.status}: {tested}" + (f"; files in {run.out}" if run.out else ""))
    return summary


def fit(model: nn.Module, data, config: Optional[TrainConfig] = None, *,
        callbacks: Iterable = ()) -> FitResult:
    """Train `model` on `data` (a data.DataBundle: .train/.val/.test loaders, .set_epoch,
    .info, .recipe()) with `config`, writing the files of the module docstring when
    config.out is set. Under torchrun (an initialised process group) it trains with DDP.

    What was trained is read from the model (``course_cfg``, stamped by create_model)
    and the data (``recipe()``), not from `config`, which says how to train.
    callbacks: objects with any of on_fit_start(info), on_step_end(epoch, step, steps,
    loss), on_epoch_end(record, history), on_fit_end(summary) (see callbacks.LivePlot).
    Returns a FitResult. Raises NonFiniteLossError on a NaN/inf loss (the last
    checkpoint stays as it was) and ConfigError for a bad setting.
    """
    config = config or TrainConfig()
    callbacks = list(callbacks)
    run = _start(model, data, config)
    _resume(run)
    run.base = _describe(run, data)
    _callbacks_call(callbacks, "on_fit_start", dict(run.base, start_epoch=run.resume.epoch))
    _announce(run)
    run.t_start = time.perf_counter()
    try:
        _train_epochs(run, data, callbacks)
    except NonFiniteLossError as e:
        _write_failure(run, e)
        raise
    summary = _finish(run, data)
    _callbacks_call(callbacks, "on_fit_end", summary)
    barrier(run.where.dist)  # leave together: rank 0 has written its files before teardown
    return FitResult(run.raw, run.history, summary, run.out)


# --------------------------------------------------------------------------------------
# Building model and data from a config (the command line and the ablation runner)
# --------------------------------------------------------------------------------------
def make_model(config: TrainConfig, num_classes: Optional[int] = None,
               in_chans: Optional[int] = None) -> nn.Module:
    """create_model(config.model, **config.model_args) for the config's dataset."""
    from .data import DATASETS
    from .models import create_model, list_models

    names = list_models()
    if config.model not in names:
        close = difflib.get_close_matches(config.model, names, n=3, cutoff=0.5)
        raise ConfigError("model", config.model,
                          (f"did you mean {', '.join(close)}? " if close else "")
                          + f"allowed: {', '.join(names)}")
    if config.dataset == SYNTHETIC:
        classes, chans = SYNTHETIC_CLASSES, 3
    else:
        classes, chans = DATASETS[config.dataset].num_classes, DATASETS[config.dataset].in_chans
    kw = dict(config.model_args)
    kw["num_classes"] = num_classes or classes
    kw["in_chans"] = in_chans or chans
    try:
        return create_model(config.model, **kw)
    except TypeError as e:
        bad = next((k for k in config.model_args if repr(k) in str(e) or k in str(e)), "model_args")
        raise ConfigError(bad, config.model_args.get(bad, config.model_args),
                          f"model {config.model!r} does not take it ({e})") from None
    except ValueError as e:
        bad = next((k for k in config.model_args if f"{k}=" in str(e)), "model_args")
        raise ConfigError(bad, config.model_args.get(bad, config.model_args), str(e)) from None


def make_data(config: TrainConfig, dist: Optional[DistInfo] = None):
    """The DataBundle a config asks for; under DDP this process's shard, with the global
    batch config.batch_size split evenly over the processes."""
    from .data import get_loaders, synthetic_bundle

    dist = dist or current_dist()
    if config.batch_size % dist.world_size:
        raise ConfigError("batch_size", config.batch_size,
                          f"the global batch must divide evenly over {dist.world_size} processes")
    kw = dict(batch_size=config.batch_size // dist.world_size,
              eval_batch_size=config.eval_batch_size, seed=config.seed, augment=config.augment,
              cutout=config.cutout, workers=config.workers, rank=dist.rank,
              world_size=dist.world_size)
    if config.dataset == SYNTHETIC:
        n_tr, n_va, n_te = SYNTHETIC_SIZES[config.mode]
        return synthetic_bundle(config.train_size or n_tr, config.val_size or n_va,
                                config.test_size or n_te, num_classes=SYNTHETIC_CLASSES,
                                mode=config.mode, **kw)
    return get_loaders(config.dataset, root=config.data_root, mode=config.mode,
                       train_size=config.train_size, val_size=config.val_size,
                       test_size=config.test_size, **kw)


def run(config: TrainConfig, callbacks: Iterable = ()) -> FitResult:
    """Check the out folder and the device, seed, build the model and the data the config
    names, and fit. Under torchrun the process group is started here (and closed at the
    end)."""
    import torch.distributed as tdist

    check_out_folder(config)  # before anything slow: a folder that holds a run is refused
    started = False
    if dist_from_env().active and not tdist.is_initialized():
        init_distributed(config.device)
        started = True
    try:
        prepare_process(config, current_dist())  # threads, the device check, the seed
        model = make_model(config)  # before the data: a bad model argument fails fast
        data = make_data(config, current_dist())
        return fit(model, data, config, callbacks=callbacks)
    finally:
        if started:
            tdist.destroy_process_group()


# --------------------------------------------------------------------------------------
# Command line: one option per TrainConfig field (its metadata: help, group, argparse
# settings), plus the recipe to start from, a JSON file and model-argument shortcuts
# --------------------------------------------------------------------------------------
_EXTRA_OPTIONS = {"model_args": "--model", "attn_layer": "--se", "preset": "--preset",
                  "config": "--config", "cutout_size": "--cutout-size"}
# model arguments the command line sets directly (positive integers; --se is attn_layer)
_MODEL_ARG_OPTIONS = {
    "scale": "Dense2Net scale s (report default 4)",
    "groups": "Dense2Net cardinality C (report default 1)",
    "width": "Dense2Net split width w (default bottleneck / s)",
}


def _option_for(param: str) -> str:
    """The command-line option of a ConfigError's param."""
    return _EXTRA_OPTIONS.get(param) or option_for(param)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m course_utils.train",
        usage="%(prog)s [--model NAME] [--dataset NAME] [--epochs N] [--out DIR] [options] "
              "(all options: --help)",
        description="Train a model of the course's zoo with the Dense2Net report's recipe "
                    "(SGD lr 0.1, momentum 0.9, wd 1e-4, batch 128, 100 epochs, Dense2Net-121 "
                    "on CIFAR-100). Options left out take the preset's value (default "
                    "preset: report); each option is a field of course_utils.config.TrainConfig, "
                    "whose help says where its default comes from.",
        argument_default=None)
    groups = {name: ap.add_argument_group(name) for name in OPTION_GROUPS}
    g = groups["what to train"]
    g.add_argument("--preset", default="report", help=f"named recipe: {', '.join(PRESETS)}")
    g.add_argument("--config", metavar="JSON", help="TrainConfig fields from a JSON file (e.g. a "
                   "run's summary.json 'config' or an ablation run's config.json); options "
                   "given on the command line override it")
    add_field_options(groups)
    g.add_argument("--cutout-size", type=int, help="Cutout hole side in pixels (implies --cutout)")
    for name, text in _MODEL_ARG_OPTIONS.items():
        g.add_argument(f"--{name}", type=int, help=text)
    g.add_argument("--se", action=argparse.BooleanOptionalAction,
                   help="squeeze-excitation in every Dense2Net layer (report sec. 4.2.5)")
    return ap


def _read_config_file(path: str) -> dict:
    try:
        loaded = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError("config", path, f"a readable JSON file is needed ({e})") from None
    loaded = loaded.get("config", loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(loaded, dict):
        raise ConfigError("config", path, "the JSON must be an object of TrainConfig fields")
    check_fields(loaded, "config", path)
    return loaded


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed command line asks for (the preset, then the --config
    file, then the options given)."""
    checks.one_of("preset", args.preset, tuple(PRESETS), error=ConfigError)
    kw = dict(PRESETS[args.preset])
    if args.config is not None:
        kw.update(_read_config_file(args.config))
    kw.update(values_from_args(args))
    if args.milestones is not None and args.milestone_fractions is None:
        kw["milestone_fractions"] = None  # epochs given: no fractions from the preset
    if args.cutout_size is not None:
        if args.cutout is False:
            raise ConfigError("cutout_size", args.cutout_size, "not together with --no-cutout")
        kw["cutout"] = args.cutout_size
    margs = dict(kw.get("model_args", {}))
    for name in _MODEL_ARG_OPTIONS:
        v = getattr(args, name)
        if v is not None:
            checks.integer(name, v, 1, error=ConfigError)
            margs[name] = v
    if args.se:
        margs["attn_layer"] = "se"
    kw["model_args"] = margs
    return TrainConfig(**kw)


def main(argv: Optional[Sequence[str]] = None, callbacks: Iterable = ()) -> int:
    """`python -m course_utils.train ...`: 0 on success; 2 for a bad option (the message
    names it); 1 when the data is missing, a checkpoint cannot be read or the loss
    became NaN. `callbacks` go to fit (for scripts that wrap the command line)."""
    from .data import DataIntegrityError, DataNotFoundError

    ap = _parser()
    args = ap.parse_args(argv)
    try:
        run(config_from_args(args), callbacks=callbacks)
    except ConfigError as e:
        ap.error(f"argument {_option_for(e.param)}: {e}")  # exits with status 2
    except (DataNotFoundError, DataIntegrityError) as e:
        print(f"{ap.prog}: error: argument --dataset: {e}", file=sys.stderr)
        return 1
    except (NonFiniteLossError, CheckpointError) as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{ap.prog}: interrupted; the last checkpoint is intact, continue with --resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
