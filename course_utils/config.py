"""What a training run is asked to do: :class:`TrainConfig`, its checks, and named recipes.

Every field says where its default comes from (the Dense2Net report unless it says
otherwise); that sentence is also the field's ``--help`` on the command line, which
:mod:`course_utils.cli` generates from these fields. ``preset(name)`` is a TrainConfig of
a named recipe (:data:`PRESETS`). A value that is not allowed raises :class:`ConfigError`
naming the field, the value and what is allowed.
"""

from __future__ import annotations

import argparse
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from . import checks
from .data import DATASETS, MODES, SYNTHETIC
from .env import DEVICES

__all__ = ["AMP_CHOICES", "CHANNELS_LAST_CHOICES", "EARLY_STOP_METRICS", "PRESETS",
           "SCHEDULES", "ConfigError", "TrainConfig", "check_fields", "preset"]

SCHEDULES = ("step", "plateau", "cosine", "onecycle", "constant")
AMP_CHOICES = ("auto", "off", "bf16", "fp16")
CHANNELS_LAST_CHOICES = ("auto", "on", "off")
EARLY_STOP_METRICS = ("val_loss", "val_acc")
DATASET_CHOICES = (*DATASETS, SYNTHETIC)


class ConfigError(checks.BadValue):
    """A training setting has a value that is not allowed; ``param`` names the setting."""


def _field(group: str, default: Any, help: str, *, factory: bool = False,
           on_cli: bool = True, **option) -> Any:
    """A TrainConfig field: its default, its help (what it is and where the default comes
    from), its --help group, and the argparse settings where the generated option differs
    from the plain one (`option`; ``on_cli=False``: not on the command line)."""
    meta = {"group": group, "help": help, "option": option if on_cli else None}
    if factory:
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def _train(default, help, **kw):
    return _field("what to train", default, help, **kw)


def _optim(default, help, **kw):
    return _field("optimisation", default, help, **kw)


def _device(default, help, **kw):
    return _field("devices", default, help, **kw)


def _books(default, help, **kw):
    return _field("bookkeeping", default, help, **kw)


@dataclass
class TrainConfig:
    """Everything a training run needs besides the model and the data.

    ``model``, ``model_args``, ``dataset``, ``mode``, the sizes, ``augment``, ``cutout``
    and ``batch_size`` say which model and data :func:`course_utils.train.run` (and the
    command line) builds. :func:`course_utils.train.fit` takes a model and data you built
    and records what they are (the model's ``course_cfg``, the bundle's ``recipe()``),
    not these fields.
    """

    # --- what to train -----------------------------------------------------------------
    model: str = _train("dense2net121", "zoo model name (python -c 'from course_utils.models "
                        "import list_models; print(list_models())'); report sec. 3.1-3.2 and "
                        "Fig. 6: Dense2Net-121")
    model_args: dict = _train(dict, "model builder arguments (the command line sets them "
                              "with --scale, --groups, --width, --se); Table 1's rows set "
                              "scale, groups, attn_layer", factory=True, on_cli=False)
    dataset: str = _train("cifar100", f"one of {', '.join(DATASETS)} (or {SYNTHETIC}: no "
                          "files, for tests); report sec. 4.1: every experiment is on CIFAR-100")
    data_root: Optional[str] = _train(None, "folder with the dataset files (default: the data "
                                      "layer's search order, COURSE_DATA, data/, ...)")
    mode: str = _train("full", f"data size: {', '.join(MODES)}; the report trains on the "
                       "whole training split (full); quick and smoke are subsets for lessons "
                       "and CI")
    train_size: Optional[int] = _train(None, "training images, a multiple of the class count "
                                       "(default: the mode's size, data.MODE_SIZES)")
    val_size: Optional[int] = _train(None, "validation images, held out of the training set "
                                     "(default: the mode's; full mode holds out 10%, report "
                                     "sec. 4.1)")
    test_size: Optional[int] = _train(None, "test images (default: the mode's; all 10,000 in "
                                      "full mode)")
    augment: bool = _train(True, "crop + flip augmentation; report sec. 4.2.1 (off: Table 1's "
                           "'No Augmentation' rows)")
    cutout: int = _train(0, "Cutout, 1 hole of 8 px (--cutout-size for another side); report "
                         "sec. 4.2.2, only in Table 1's 'with Cutout' row", bool_switch=True)
    # --- optimisation --------------------------------------------------------------------
    epochs: int = _optim(100, "epochs; report sec. 3.2 and 4.1")
    batch_size: int = _optim(128, "global batch, split over DDP processes; report sec. 3.2")
    eval_batch_size: int = _optim(512, "evaluation batch: only speed, results are unchanged")
    lr: float = _optim(0.1, "learning rate; report appendix: --lr default 0.1")
    momentum: float = _optim(0.9, "SGD momentum; report sec. 3.2")
    weight_decay: float = _optim(1e-4, "weight decay; report sec. 3.2")
    nesterov: bool = _optim(False, "Nesterov momentum; the report says SGD with momentum, the "
                            "DenseNet paper uses Nesterov")
    schedule: str = _optim("step", f"LR schedule, one of {', '.join(SCHEDULES)}; report sec. "
                           "4.1: its first schedule is step, plateau its later one")
    milestones: tuple = _optim((30, 60), "step schedule: epochs where the LR is multiplied by "
                               "gamma; report sec. 4.1: epochs 30 and 60", nargs="+", type=int)
    milestone_fractions: Optional[tuple] = _optim(
        None, "step schedule: milestones as fractions of the epochs (wins over --milestones); "
        "the DenseNet paper: 0.5 0.75", nargs="+", type=float)
    gamma: float = _optim(0.1, "LR factor of the step and plateau schedules; report sec. 4.1: "
                          "'decreased by a factor of 10'")
    plateau_patience: int = _optim(10, "plateau schedule: epochs without a new minimum of the "
                                   "validation loss before the LR drops; report sec. 4.1")
    warmup_epochs: float = _optim(0.0, "linear LR warm-up over this many epochs (the report "
                                  "has none; useful for onecycle and large DDP batches)")
    early_stop_patience: Optional[int] = _optim(
        None, "stop when the early-stop metric has not improved for this many epochs; report "
        "sec. 4.1 added early stopping later without a patience: off", option="--early-stop",
        metavar="PATIENCE")
    early_stop_metric: str = _optim("val_loss", f"one of {', '.join(EARLY_STOP_METRICS)}; "
                                    "report sec. 4.1: over-fitting shows in the validation loss")
    label_smoothing: float = _optim(0.0, "label smoothing of the cross-entropy (not in the "
                                    "report)")
    grad_clip: Optional[float] = _optim(None, "largest global gradient norm, off by default "
                                        "(not in the report)")
    time_limit_s: Optional[float] = _optim(None, "stop after the epoch that would overrun this "
                                           "many seconds (not in the report)",
                                           option="--time-limit", metavar="SECONDS")
    # --- devices -------------------------------------------------------------------------
    device: str = _device("auto", f"one of {', '.join(DEVICES)} or cuda:N; auto: CUDA, else "
                          "MPS, else the CPU")
    amp: str = _device("auto", f"one of {', '.join(AMP_CHOICES)}; auto: bf16 on CUDA (fp16 + "
                       "GradScaler without bf16), bf16 on a CPU with bf16 instructions "
                       "(AVX512_BF16, AMX, Arm BF16), else fp32; off on MPS")
    channels_last: str = _device("auto", f"one of {', '.join(CHANNELS_LAST_CHOICES)}; auto: on "
                                 "for CUDA and the CPU (benchmarks/train.py), off for MPS")
    compile: bool = _device(False, "torch.compile: a slow start, pays off only on long GPU runs")
    deterministic: bool = _device(False, "CUDA: deterministic cuDNN, no autotuning (CPU runs "
                                  "are deterministic anyway)")
    sync_bn: bool = _device(True, "DDP on CUDA: BatchNorm statistics over the global batch, as "
                            "one GPU with the same batch")
    threads: Optional[int] = _device(None, "torch CPU threads (default: torch's, all cores)")
    workers: int = _device(0, "DataLoader worker processes; augmentation is batched, 0 is "
                           "fastest on 2 cores")
    # --- bookkeeping ---------------------------------------------------------------------
    seed: int = _books(0, "one seed for the split, the shuffle, the augmentation and the weights")
    out: Optional[str] = _books(None, "folder for metrics.jsonl, checkpoint.pt, best.pt, "
                                "summary.json (default: keep nothing on disk)")
    resume: bool = _books(False, "continue from OUT/checkpoint.pt (report appendix --r)",
                          action="store_true")
    overwrite: bool = _books(False, "start over even if OUT holds a checkpoint (otherwise a run "
                             "refuses to, so that nothing is lost)", action="store_true")
    save_best: bool = _books(True, "keep OUT/best.pt and also report the test accuracy of the "
                             "best-validation weights")
    progress: bool = _books(True, "tqdm progress bars (COURSE_PROGRESS=0 also turns them off)")
    verbose: bool = _books(True, "no per-epoch lines", option="--quiet", action="store_false")

    def __post_init__(self) -> None:
        if isinstance(self.cutout, bool):
            self.cutout = 8 if self.cutout else 0  # report sec. 4.2.2: one 8-px hole
        if isinstance(self.channels_last, bool):
            self.channels_last = "on" if self.channels_last else "off"
        if _is_seq(self.milestones):
            self.milestones = tuple(int(m) for m in self.milestones)
        if _is_seq(self.milestone_fractions):
            self.milestone_fractions = tuple(float(m) for m in self.milestone_fractions)
        self.model_args = dict(self.model_args or {})
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError for the first field whose value is not allowed."""
        err = dict(error=ConfigError)
        for name, allowed in (("dataset", DATASET_CHOICES), ("mode", MODES),
                              ("schedule", SCHEDULES), ("amp", AMP_CHOICES),
                              ("channels_last", CHANNELS_LAST_CHOICES),
                              ("early_stop_metric", EARLY_STOP_METRICS)):
            checks.one_of(name, getattr(self, name), allowed, **err)
        if not (self.device in DEVICES or str(self.device).startswith("cuda:")):
            raise ConfigError("device", self.device, f"allowed: {', '.join(DEVICES)} or cuda:N")
        for name in ("epochs", "batch_size", "eval_batch_size", "plateau_patience"):
            checks.integer(name, getattr(self, name), 1, **err)
        for name in ("cutout", "workers", "seed"):
            checks.integer(name, getattr(self, name), 0, **err)
        for name in ("train_size", "val_size", "test_size", "early_stop_patience", "threads"):
            if getattr(self, name) is not None:
                checks.integer(name, getattr(self, name), 1, **err)
        self._validate_numbers()
        self._validate_milestones()
        for f in fields(self):
            if isinstance(f.default, bool):
                checks.boolean(f.name, getattr(self, f.name), **err)
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("model", self.model, "allowed: a registered model name")
        if self.resume and not self.out:
            raise ConfigError("resume", self.resume, "allowed: resume=True with out, the folder "
                              "to resume (--out); or resume=False")

    def _validate_numbers(self) -> None:
        err = dict(error=ConfigError)
        checks.number("lr", self.lr, 0, math.inf, low_open=True, allowed="a finite number > 0",
                      **err)
        checks.number("momentum", self.momentum, 0, 1, high_open=True, **err)
        checks.number("weight_decay", self.weight_decay, 0, allowed="a finite number >= 0", **err)
        checks.number("gamma", self.gamma, 0, 1, low_open=True, **err)
        checks.number("warmup_epochs", self.warmup_epochs, 0, self.epochs,
                      allowed=f"a number in [0, epochs={self.epochs}]", **err)
        checks.number("label_smoothing", self.label_smoothing, 0, 1, high_open=True, **err)
        if self.grad_clip is not None:
            checks.number("grad_clip", self.grad_clip, 0, low_open=True,
                          allowed="None or a number > 0", **err)
        if self.time_limit_s is not None:
            checks.number("time_limit_s", self.time_limit_s, 0, low_open=True,
                          allowed="None or seconds > 0", **err)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov", self.nesterov, "Nesterov needs momentum > 0")

    def _validate_milestones(self) -> None:
        m = self.milestones
        if not _increasing(m) or any(x < 0 for x in m):
            raise ConfigError("milestones", m,
                              "allowed: increasing epoch numbers >= 0, e.g. (30, 60)")
        mf = self.milestone_fractions
        if mf is not None and (not _increasing(mf) or not all(0 < f < 1 for f in mf)):
            raise ConfigError("milestone_fractions", mf,
                              "allowed: None or increasing fractions in (0, 1), e.g. (0.5, 0.75)")

    def resolved_milestones(self) -> tuple:
        """Milestones in epochs (from milestone_fractions when those are set)."""
        if self.milestone_fractions is not None:
            return tuple(int(round(f * self.epochs)) for f in self.milestone_fractions)
        return tuple(self.milestones)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.resolved_milestones())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A TrainConfig from a dict of its fields (e.g. a summary.json's "config");
        an unknown key raises ConfigError naming it."""
        check_fields(d)
        return cls(**d)


def check_fields(d: dict, param: Optional[str] = None, value: Any = None) -> None:
    """Every key of `d` must be a TrainConfig field. The ConfigError names the key, or
    `param` = `value` when given (e.g. the --config file the keys came from)."""
    names = sorted(f.name for f in fields(TrainConfig))
    unknown = sorted(set(d) - set(names))
    if unknown:
        allowed = f"fields: {', '.join(names)}"
        if param is None:
            raise ConfigError(unknown[0], d[unknown[0]], f"not a TrainConfig field; {allowed}")
        raise ConfigError(param, value, f"unknown field {unknown[0]!r}; {allowed}")


# --------------------------------------------------------------------------------------
# The command-line form of the fields (course_utils.train's parser is made of them)
# --------------------------------------------------------------------------------------
OPTION_GROUPS = ("what to train", "optimisation", "devices", "bookkeeping")


def _cli_fields():
    return [f for f in fields(TrainConfig) if f.metadata["option"] is not None]


def option_for(param: str) -> str:
    """The command-line option of a TrainConfig field (--name-with-dashes by default)."""
    for f in _cli_fields():
        if f.name == param:
            return f.metadata["option"].get("option", "--" + f.name.replace("_", "-"))
    return "--" + param.replace("_", "-")


def _scalar_type(hint):
    """int, float or str of a field's annotation (Optional[X] -> X)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def add_field_options(groups: dict) -> None:
    """One argparse option per field, in `groups` (OPTION_GROUPS -> argument groups): its
    help from the field's, booleans as --x/--no-x, None (not given) by default."""
    hints = typing.get_type_hints(TrainConfig)
    for f in _cli_fields():
        kw = {k: v for k, v in f.metadata["option"].items() if k != "option"}
        kw["dest"], kw["help"] = f.name, f.metadata["help"].replace("%", "%%")
        if kw.pop("bool_switch", False) or (hints[f.name] is bool and "action" not in kw):
            kw["action"] = argparse.BooleanOptionalAction
        elif kw.get("action") == "store_false":
            kw["default"] = None  # not given: the preset's (or the --config file's) value
        elif "action" not in kw:
            kw.setdefault("type", _scalar_type(hints[f.name]))
        groups[f.metadata["group"]].add_argument(option_for(f.name), **kw)


def values_from_args(args: argparse.Namespace) -> dict:
    """The fields the parsed command line gives (store_true ones always: False when left
    out, so that a --config file's resume/overwrite never starts or resumes by itself)."""
    given = {f.name: getattr(args, f.name, None) for f in _cli_fields()}
    return {k: v for k, v in given.items() if v is not None}


def _is_seq(x) -> bool:
    return isinstance(x, (tuple, list))


def _increasing(xs) -> bool:
    return _is_seq(xs) and list(xs) == sorted(set(xs))


# Named recipes. Each is a dict of the TrainConfig fields that differ from the defaults.
PRESETS: dict[str, dict] = {
    # The Dense2Net report's recipe as it describes it (sec. 3.2, 4.1): the defaults.
    "report": {},
    # The report's later recipe (sec. 4.1): LR x0.1 on a validation-loss plateau of 10
    # epochs plus early stopping (its patience is not given; 20 = two plateau periods).
    "report_plateau": dict(schedule="plateau", early_stop_patience=20),
    # The DenseNet paper's CIFAR recipe (Huang et al., sec. 4.2): 300 epochs, batch 64,
    # LR 0.1 divided by 10 at 50% and 75% of training, Nesterov momentum 0.9, wd 1e-4.
    # The report's DenseNet baseline reached 71.9% (Table 1), about 5 points under
    # published reproductions (~77%): train the same backbone this way to test why.
    "densenet_paper": dict(model="densenet121_cifar", epochs=300, batch_size=64,
                           nesterov=True, schedule="step", milestone_fractions=(0.5, 0.75)),
    # A widely used public CIFAR-100 recipe, as its train.py and conf/global_settings.py
    # set it (weiaicunzai/pytorch-cifar100): 200 epochs, batch 128, LR 0.1 with a linear
    # warm-up over the first epoch (its WarmUpLR, `-warm 1`), then divided by 5 at epochs
    # 60, 120 and 160 (MultiStepLR, gamma 0.2), plain SGD momentum 0.9 (not Nesterov),
    # wd 5e-4. Its README lists DenseNet-121 (7.0M) at 22.99% top-1 error on CIFAR-100,
    # i.e. 77.01%, against the report's 71.91%.
    "cifar100_repro": dict(model="densenet121_cifar", epochs=200, batch_size=128, nesterov=False,
                           warmup_epochs=1.0, weight_decay=5e-4, schedule="step",
                           milestone_fractions=(0.3, 0.6, 0.8), gamma=0.2),
    # The CPU classroom recipe of benchmarks/cifar10_cpu.py: the compact ResNet-9-style
    # CNN on CIFAR-10, one-cycle LR (short warm-up, linear decay), label smoothing;
    # reaches >= 70% test accuracy in under 15 minutes on 2 CPU cores.
    "cpu_fast": dict(model="cifar_cnn", dataset="cifar10", mode="full", epochs=5,
                     batch_size=256, lr=0.4, nesterov=True, weight_decay=5e-4,
                     schedule="onecycle", warmup_epochs=1.0, label_smoothing=0.1),
}


def preset(name: str = "report", **overrides) -> TrainConfig:
    """A TrainConfig from a named recipe (PRESETS), with keyword overrides."""
    checks.one_of("preset", name, tuple(PRESETS), error=ConfigError)
    return TrainConfig(**{**PRESETS[name], **overrides})
