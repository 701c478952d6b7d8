"""Seeded comparisons inside a lesson: configurations x seeds, chosen on validation,
the choice tested once.

    study = Study(D, seeds=(0, 1, 2))                 # D: a data.DataBundle
    for act in (None, "relu"):
        study.run(f"mid_act={act}", lambda: create_model("xception_tiny", mid_act=act), cfg)
    study.run_control("mid_act=None")                 # the baseline again, seeds + 1000
    print(study.table(baseline="mid_act=None"))        # mean +- std, paired intervals
    for line in study.verdicts(baseline="mid_act=None"):
        print(line)                                     # what each interval can resolve
    chosen = study.choose()                            # highest mean validation accuracy
    print(study.test(chosen))                          # the test split, once

Seed s of every configuration starts from the same torch seed (initial weights where the
architectures allow) and sees the same training batches in the same order with the same
augmentation draws (``DataBundle.with_seed(s)``: the split stays the study's), so
configurations are compared in pairs by seed (course_utils.stats); another seed changes
both the initial weights and the data order.
Training runs see no test split (``DataBundle.test`` is None for ``fit``); the test
split is evaluated by :meth:`Study.test` alone, for one configuration, once: asking for
a second configuration afterwards is an error, because a choice made after looking at
test accuracy is a choice made on the test split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from . import stats
from .train import TrainConfig, evaluate, fit

__all__ = ["Study", "SeedRun"]

CONTROL_OFFSET = 1000


@dataclass
class SeedRun:
    """One configuration trained with one seed."""
    label: str
    seed: int
    val_acc: float  # final-epoch validation accuracy, in percent
    train_acc: float  # final-epoch training accuracy (on the training batches), percent
    history: list
    model: nn.Module = field(repr=False)
    seconds: float = 0.0

    @property
    def gap(self) -> float:
        """Training minus validation accuracy at the last epoch, in points."""
        return self.train_acc - self.val_acc


class Study:
    """Configurations trained with the same seeds on one data bundle; see the module
    docstring. ``runs[label][seed]`` holds each :class:`SeedRun`."""

    def __init__(self, data, seeds: Sequence[int] = (0, 1, 2)):
        seeds = tuple(seeds)
        if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
            raise ValueError(f"seeds: {seeds!r}; allowed: one or more integers >= 0")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds: {seeds!r} repeats a seed; allowed: distinct seeds")
        self.data, self.seeds = data, seeds
        self._train_data = dataclasses.replace(data, test=None)
        self.runs: dict[str, dict[int, SeedRun]] = {}
        self.controls: dict[str, str] = {}  # control label -> the label it repeats
        self._tested: Optional[tuple[str, dict]] = None
        self._recipes: dict[str, tuple] = {}

    # ---- training ------------------------------------------------------------------
    def _fit_one(self, label: str, make_model: Callable[[], nn.Module], config: TrainConfig,
                 seed: int, callbacks) -> SeedRun:
        torch.manual_seed(seed)
        model = make_model()
        cfg = dataclasses.replace(config, seed=seed, out=None, verbose=False, progress=False)
        res = fit(model, self._train_data.with_seed(seed), cfg, callbacks=callbacks)
        last = res.history[-1]
        return SeedRun(label, seed, 100 * last["val_acc"], 100 * last["train_acc"],
                       res.history, res.model, sum(r["seconds"] for r in res.history))

    def run(self, label: str, make_model: Callable[[], nn.Module], config: TrainConfig, *,
            seeds: Optional[Sequence[int]] = None, callbacks=()) -> dict[int, SeedRun]:
        """Train `make_model()` with `config` once per seed (the study's seeds unless
        given); returns {seed: SeedRun}. Running a label again replaces its runs."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"label: {label!r}; allowed: a non-empty string")
        if isinstance(make_model, nn.Module) or not callable(make_model):
            raise TypeError(f"make_model: {make_model!r}; allowed: a function that returns a new model (e.g. lambda: create_model(...))")
        if self._tested is not None:
            raise RuntimeError(f"run({label!r}): the test split was already used for "
                               f"{self._tested[0]!r}; a study trains, chooses, then tests")
        seeds = self.seeds if seeds is None else tuple(seeds)
        self.runs[label] = {s: self._fit_one(label, make_model, config, s, callbacks) for s in seeds}
        self._recipes[label] = (make_model, config)
        return self.runs[label]

    def run_control(self, baseline: str, offset: int = CONTROL_OFFSET) -> str:
        """The noise floor: `baseline` again with seeds s + offset (other initial weights
        and data order), compared with `baseline` like any variant. Returns its label."""
        self._need(baseline, "baseline")
        make_model, config = self._recipes[baseline]
        label = f"{baseline} (control: seeds +{offset})"
        runs = {}
        for s in self.seeds:
            r = self._fit_one(label, make_model, config, s + offset, ())
            runs[s] = dataclasses.replace(r, seed=s)  # paired with the baseline's seed s
        self.runs[label], self.controls[label] = runs, baseline
        return label

    # ---- statistics ----------------------------------------------------------------
    def _need(self, label: str, what: str) -> None:
        if label not in self.runs:
            raise KeyError(f"{what}: {label!r} has not been run; allowed: {sorted(self.runs)}")

    def values(self, label: str, metric: str = "val_acc") -> dict[int, float]:
        """{seed: value} of a label; metric: "val_acc", "train_acc" or "gap"."""
        self._need(label, "label")
        if metric not in ("val_acc", "train_acc", "gap"):
            raise ValueError(f"metric: {metric!r}; allowed: 'val_acc', 'train_acc', 'gap'")
        return {s: getattr(r, metric) for s, r in self.runs[label].items()}

    def summary(self, label: str, metric: str = "val_acc") -> tuple[float, Optional[float]]:
        """(mean, std) of a label over its seeds."""
        return stats.mean_std(list(self.values(label, metric).values()))

    def difference(self, baseline: str, label: str, metric: str = "val_acc") -> stats.Interval:
        """label - baseline, paired by seed, with its 95% t interval."""
        return stats.paired_interval(self.values(baseline, metric), self.values(label, metric))

    def table(self, baseline: str, metric: str = "val_acc") -> str:
        """A text table: each label's mean +- std (validation accuracy and the train-val
        gap) over its seeds and its paired difference against `baseline`."""
        self._need(baseline, "baseline")
        name = {"val_acc": "val acc %", "train_acc": "train acc %", "gap": "train-val gap"}[metric]
        w = max(len(k) for k in self.runs) + 2
        head = (f"{'configuration':<{w}}{'seeds':>6}  {name + ' mean +- std':>22}  "
                f"{'gap mean':>8}  {'minus ' + baseline + ' [95% t interval]'}")
        lines = [head, "-" * len(head)]
        for label in self.runs:
            m, s = self.summary(label, metric)
            g, _ = self.summary(label, "gap")
            spread = f"{m:6.2f} +- {s:5.2f}" if s is not None else f"{m:6.2f}  (1 seed)"
            if label == baseline:
                diff = "(baseline)"
            else:
                iv = self.difference(baseline, label, metric)
                diff = (f"{iv.mean:+6.2f} [{iv.low:+6.2f}, {iv.high:+6.2f}]" if iv.low is not None
                        else f"{iv.mean:+6.2f} (1 seed: no interval)")
            lines.append(f"{label:<{w}}{len(self.runs[label]):>6}  {spread:>22}  {g:8.2f}  {diff}")
        return "\n".join(lines)

    def verdicts(self, baseline: str, metric: str = "val_acc") -> list[str]:
        """One sentence per compared label (stats.verdict), the control's first."""
        self._need(baseline, "baseline")
        unit = " points"
        lines = []
        for k in [k for k in self.runs if k in self.controls]:
            iv = self.difference(baseline, k, metric)
            lines.append(stats.verdict(iv, f"{k} minus {baseline}", unit))
            if iv.excludes_zero:   # the same configuration: this "difference" is noise
                lines.append(f"  {k} is {baseline} again with other seeds, so this interval "
                             "excluding 0 is a false alarm, of the kind a 95% interval gives "
                             "about 1 time in 20: read every verdict below with that in mind "
                             "(more seeds make such alarms rarer and the intervals narrower).")
        return lines + [stats.verdict(self.difference(baseline, k, metric), f"{k} minus {baseline}", unit)
                        for k in self.runs if k not in self.controls and k != baseline]

    # ---- choosing and testing ------------------------------------------------------
    def choose(self, metric: str = "val_acc") -> str:
        """The label (controls excluded) with the highest mean validation accuracy."""
        labels = [k for k in self.runs if k not in self.controls]
        if not labels:
            raise RuntimeError("choose(): nothing has been run yet")
        return max(labels, key=lambda k: self.summary(k, metric)[0])

    def test(self, label: Optional[str] = None) -> dict:
        """Evaluate every seed's model of `label` (default: :meth:`choose`) on the test
        split, once: {"label", "acc" (mean %), "std", "per_seed", "images"}. Asking again
        for the same label returns the same result; for another label it is an error."""
        label = self.choose() if label is None else label
        self._need(label, "label")
        if self._tested is not None:
            if self._tested[0] != label:
                raise RuntimeError(
                    f"test({label!r}): the test split was already used for {self._tested[0]!r}; "
                    "choose on validation, then test that one choice once")
            return self._tested[1]
        if self.data.test is None:
            raise ValueError("data: this bundle has no test split (data.test is None)")
        per_seed, images = {}, 0
        for s, r in self.runs[label].items():
            m = evaluate(r.model, self.data.test)
            per_seed[s], images = 100 * m["acc"], m["images"]
        mean, std = stats.mean_std(list(per_seed.values()))
        out = {"label": label, "acc": mean, "std": std, "per_seed": per_seed, "images": images}
        self._tested = (label, out)
        return out

    def groups(self, labels: Optional[Sequence[str]] = None) -> dict[str, list]:
        """{label: [history of each seed]} for viz.seed_curves (default: every label)."""
        labels = list(self.runs) if labels is None else list(labels)
        for k in labels:
            self._need(k, "label")
        return {k: [r.history for r in self.runs[k].values()] for k in labels}

    def histories(self, label: str) -> dict[str, list]:
        """{"label, seed s": history} for viz.compare_runs."""
        self._need(label, "label")
        return {f"{label}, seed {s}": r.history for s, r in self.runs[label].items()}
