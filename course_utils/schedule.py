"""The learning rate of every step, and when a run stops early.

:func:`lr_factor` is the LR multiplier of one optimizer step, a pure function of the
schedule, the step and (for "plateau") one number kept from the validation losses.
:class:`LRSchedule` hands it to torch as a ``torch.optim.lr_scheduler.LambdaLR`` (stepped
after every optimizer step, so its state and its LR are torch's own).

The plateau rule is ours, not ``torch.optim.lr_scheduler.ReduceLROnPlateau``: the report
(sec. 4.1) decays when the validation loss "sets no new minimum for 10 epochs", i.e.
after `plateau_patience` epochs without a strictly lower loss, where ReduceLROnPlateau
decays only after patience + 1 such epochs and compares with a relative threshold
(1e-4 by default); and ReduceLROnPlateau writes the optimizer's LR itself, which the
warm-up's LambdaLR would overwrite at the next step. So the plateau decay is a factor
(:class:`PlateauRule`) that the one LambdaLR multiplies in.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from .config import SCHEDULES, ConfigError, TrainConfig

__all__ = ["EarlyStopping", "LRSchedule", "PlateauRule", "lr_factor"]


def lr_factor(schedule: str, epoch: int, step: int, steps_per_epoch: int, epochs: int, *,
              milestones: Sequence[int] = (30, 60), gamma: float = 0.1,
              warmup_epochs: float = 0.0, plateau_factor: float = 1.0) -> float:
    """The LR multiplier for step `step` (0-based) of epoch `epoch` (0-based).

    step: gamma ** (number of milestones <= epoch) - with milestones (30, 60) epochs
    0-29 train at lr, 30-59 at lr/10, 60+ at lr/100 (report sec. 4.1).
    cosine: 0.5 (1 + cos(pi t)), t the fraction of training done, per step.
    onecycle: linear from 1 down to 0 at the end of training (after the warm-up).
    plateau: `plateau_factor`, kept by PlateauRule from the validation losses.
    A linear warm-up over `warmup_epochs` multiplies any of them.
    """
    spe = max(1, steps_per_epoch)
    t_epochs = epoch + step / spe  # epochs done before this step
    if schedule == "step":
        f = gamma ** sum(epoch >= m for m in milestones)
    elif schedule == "plateau":
        f = plateau_factor
    elif schedule == "constant":
        f = 1.0
    elif schedule in ("cosine", "onecycle"):
        span = max(epochs - warmup_epochs, 1e-12)
        t = min(max((t_epochs - warmup_epochs) / span, 0.0), 1.0)
        f = 0.5 * (1 + math.cos(math.pi * t)) if schedule == "cosine" else 1.0 - t
    else:
        raise ConfigError("schedule", schedule, f"allowed: {', '.join(SCHEDULES)}")
    if warmup_epochs > 0:
        f *= min(1.0, (t_epochs + 1 / spe) / warmup_epochs)
    return f


class PlateauRule:
    """The report's plateau decay (sec. 4.1): a validation loss that is not a new minimum
    for `patience` epochs in a row multiplies the factor by `gamma`."""

    def __init__(self, patience: int, gamma: float):
        self.patience, self.gamma = patience, gamma
        self.factor, self.best_loss, self.bad_epochs = 1.0, math.inf, 0

    def update(self, val_loss: float) -> None:
        if val_loss < self.best_loss:
            self.best_loss, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                self.factor *= self.gamma
                self.bad_epochs = 0


class LRSchedule:
    """The LR of every step of a run: ``config.lr * lr_factor(...)``.

    ``lr(epoch, step)`` answers without an optimizer; :meth:`attach` drives an optimizer
    with a LambdaLR over the global step (call :meth:`step` after every optimizer step);
    ``state_dict`` holds the plateau state for a resume (the step comes from the epoch).
    """

    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.milestones = config.resolved_milestones()
        self.plateau = PlateauRule(config.plateau_patience, config.gamma)
        self.scheduler: Optional[torch.optim.lr_scheduler.LambdaLR] = None

    def factor(self, epoch: int, step: int) -> float:
        c = self.config
        return lr_factor(c.schedule, epoch, step, self.steps_per_epoch, c.epochs,
                         milestones=self.milestones, gamma=c.gamma,
                         warmup_epochs=c.warmup_epochs, plateau_factor=self.plateau.factor)

    def _factor_at(self, global_step: int) -> float:
        return self.factor(*divmod(global_step, max(1, self.steps_per_epoch)))

    def lr(self, epoch: int, step: int) -> float:
        return self.config.lr * self.factor(epoch, step)

    def attach(self, optimizer: torch.optim.Optimizer, start_epoch: int = 0):
        """Drive `optimizer` with a LambdaLR (base LR config.lr) from the first step of
        `start_epoch` on (0: a fresh run; later: a resume). Returns the LambdaLR."""
        self._restart(optimizer, start_epoch * self.steps_per_epoch)
        return self.scheduler

    def _restart(self, optimizer: torch.optim.Optimizer, global_step: int) -> None:
        for group in optimizer.param_groups:
            group["initial_lr"] = self.config.lr  # the base; a resumed group has its last LR
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._factor_at,
                                                           last_epoch=global_step - 1)

    def step(self) -> None:
        """After every optimizer step: the LR of the next step."""
        self.scheduler.step()

    def current_lr(self) -> float:
        """The LR the next optimizer step uses."""
        return self.scheduler.optimizer.param_groups[0]["lr"]

    def epoch_end(self, val_loss: float, epoch: Optional[int] = None) -> None:
        """After epoch `epoch` (0-based) is evaluated: the plateau rule sees its loss. A
        decay applies from the next step on (the attached LambdaLR is set to it again:
        it computed that step's LR before the decay)."""
        if self.config.schedule != "plateau":
            return
        before = self.plateau.factor
        self.plateau.update(val_loss)
        if self.scheduler is not None and self.plateau.factor != before:
            self._restart(self.scheduler.optimizer, self.scheduler.last_epoch)

    def state_dict(self) -> dict:
        p = self.plateau
        return {"plateau_factor": p.factor, "best_loss": p.best_loss, "bad_epochs": p.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        p = self.plateau
        p.factor = float(state["plateau_factor"])
        p.best_loss = float(state["best_loss"])
        p.bad_epochs = int(state["bad_epochs"])


class EarlyStopping:
    """Stop when `metric` (val_loss: lower is better; val_acc: higher) has not improved
    for `patience` epochs (None: never). State: the best value and the epochs since."""

    def __init__(self, patience: Optional[int], metric: str = "val_loss"):
        self.patience, self.metric = patience, metric
        self.best, self.bad_epochs = None, 0

    def update(self, record: dict) -> Optional[str]:
        """"early_stopped" when the run should stop after this epoch's `record`."""
        if self.patience is None:
            return None
        value = record[self.metric]
        lower = self.metric == "val_loss"
        if self.best is None or (value < self.best if lower else value > self.best):
            self.best, self.bad_epochs = value, 0
            return None
        self.bad_epochs += 1
        return "early_stopped" if self.bad_epochs >= self.patience else None

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], int(state["bad_epochs"])
