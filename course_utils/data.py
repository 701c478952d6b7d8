"""Datasets, augmentation and loaders for the course.

One call gives everything a lesson or a training run needs::

    from course_utils.data import get_loaders
    data = get_loaders("cifar10", mode="quick", seed=0)
    data.train, data.val, data.test      # torch DataLoaders of (images, labels)
    data.info.label                      # "CIFAR-10 (JPEG re-encoding ...)" when it is

Quick and smoke mode on ``cifar10`` always use the sample embedded in the kit
(``data/cifar10-sample/``: 8,000 training and 2,000 test images of the JPEG re-encoding,
see :mod:`course_utils.sample`), whatever else is installed, so that a quick-mode result
is the same on every machine and no download is ever needed for it. Full mode, and the
other datasets, look for the files, in this order (the first that has them wins):

1. ``root=`` given explicitly: only that folder (and a torchvision download into it);
2. the ``COURSE_DATA`` environment variable;
3. the repository's ``data/`` folder (also the cache for decoded archives);
4. known system copies (Debian's ``dataset-fashion-mnist`` package);
5. a torchvision download into ``data/``;
6. otherwise a :class:`DataNotFoundError` that lists every place looked at.

In each folder the official torchvision layouts are recognised (``cifar-10-batches-py``,
``cifar-100-python``, ``FashionMNIST/raw``), plus, for CIFAR-10, the JPEG image-folder
archive ``cifar10-jpeg.tar.gz`` (or its extracted ``cifar10/`` folder). Anything loaded
from the JPEG copy is labelled as such in ``info.label``: accuracies on it are close to,
but are not, official CIFAR-10 results.

Every file is checked before use (torchvision's md5 lists for official files, the
manifest ``checksums.json`` for the rest); a corrupt or truncated file raises
:class:`DataIntegrityError` naming that file.

Augmentation is done on whole batches and is a pure function of (seed, epoch, image
index): the same image gets the same crop, flip and Cutout hole in a given epoch whatever
the batch size, the number of workers or the number of DDP processes. That is what makes
resumed and distributed runs reproducible.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import checks
from .datafiles import (  # noqa: F401  (re-exported: lessons and the engine import them from here)
    DATASETS,
    MANIFEST,
    REPO_ROOT,
    DataIntegrityError,
    DataNotFoundError,
    DatasetSpec,
    Source,
    _hash_file,
    available_datasets,
    check_dataset,
    default_cache_dir,
    find_source,
    load_arrays,
)

__all__ = [
    "DATASETS",
    "MODES",
    "SYNTHETIC",
    "DataBundle",
    "DataIntegrityError",
    "DataNotFoundError",
    "DatasetInfo",
    "Source",
    "available_datasets",
    "augment_batch",
    "find_source",
    "get_loaders",
    "load_arrays",
]

SAMPLE_DIR = REPO_ROOT / MANIFEST["sample"]["folder"]
SAMPLE_MODES = ("smoke", "quick")  # the modes that train on the embedded sample
MODES = ("smoke", "quick", "full")
# not a real dataset: synthetic_bundle (10 classes of bright squares, no files), for tests
# and demos of the engine; sizes per mode (train, val, test) unless given
SYNTHETIC = "synthetic"
SYNTHETIC_SIZES = {"smoke": (320, 80, 80), "quick": (2000, 400, 400), "full": (5000, 1000, 1000)}
SYNTHETIC_CLASSES = 10

_SAMPLE_CACHE: dict[tuple, dict] = {}


def sample_source(folder: Path | None = None) -> Source:
    """The Source of the embedded CIFAR-10 sample (whether or not its files are intact)."""
    m = MANIFEST["sample"]["per_class"]
    n = 10 * (m["train"] + m["test"])
    return Source("cifar10", "sample", Path(folder or SAMPLE_DIR),
                  f"CIFAR-10 sample, {n:,} images, JPEG re-encoding "
                  "(embedded in the kit; not the official release)", False)


def load_sample(folder: Path | None = None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], Source]:
    """The embedded sample's images and labels, every file checked against the manifest
    (a missing, truncated or altered file raises DataIntegrityError naming it)."""
    from . import sample

    folder = Path(folder or SAMPLE_DIR)
    entry = MANIFEST["sample"]
    key = (str(folder), tuple(sorted(entry["files"].items())),
           tuple((folder / f).stat().st_mtime_ns if (folder / f).is_file() else -1
                 for f in sorted(entry["files"])))
    if key not in _SAMPLE_CACHE:  # decoding 10,000 JPEGs takes about a second
        got = sample.read_sample(folder, entry, DataIntegrityError)
        _SAMPLE_CACHE.clear()
        _SAMPLE_CACHE[key] = {s: (x, y) for s, (x, y, _) in got.items()}
    arrays = _SAMPLE_CACHE[key]
    return {s: (x.copy(), y.copy()) for s, (x, y) in arrays.items()}, sample_source(folder)



# --------------------------------------------------------------------------------------
# Counter-based randomness and batch augmentation
# --------------------------------------------------------------------------------------
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return x ^ (x >> np.uint64(31))


def _randint(seed: int, epoch: int, index: np.ndarray, stream: int, high: int) -> np.ndarray:
    """Integers in [0, high) that depend only on (seed, epoch, index, stream)."""
    key = _splitmix(np.uint64(seed & 0xFFFFFFFF) * np.uint64(1 << 32) + np.uint64(epoch & 0xFFFFFFFF))
    key = _splitmix(key ^ np.uint64(stream))
    r = _splitmix(key ^ index.astype(np.uint64))
    return (r % np.uint64(high)).astype(np.int64)


def augment_batch(x: torch.Tensor, index: np.ndarray, *, seed: int, epoch: int,
                  crop_padding: int = 4, flip: bool = True, cutout: int = 0) -> torch.Tensor:
    """Random crop (zero padding), horizontal flip, and Cutout on a float batch (B,C,H,W).

    Each image's choices are a function of (seed, epoch, index[i]) only. Cutout (DeVries &
    Taylor 2017, as used in the Dense2Net report: 1 hole, 8 px) zeroes one square of side
    `cutout` whose centre is uniform over the image (the square may be clipped at the
    border); apply it after normalisation so the hole is the dataset mean.
    """
    b, c, h, w = x.shape
    if crop_padding:
        p = crop_padding
        xp = torch.nn.functional.pad(x, (p, p, p, p))  # (B, C, H+2p, W+2p)
        oy = torch.from_numpy(_randint(seed, epoch, index, 1, 2 * p + 1))
        ox = torch.from_numpy(_randint(seed, epoch, index, 2, 2 * p + 1))
        rows = (oy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
        cols = (ox[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
        x = xp[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # (B,C,H,W)
    if flip:
        f = torch.from_numpy(_randint(seed, epoch, index, 3, 2).astype(bool))
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    if cutout:
        cy = torch.from_numpy(_randint(seed, epoch, index, 4, h))[:, None, None]
        cx = torch.from_numpy(_randint(seed, epoch, index, 5, w))[:, None, None]
        yy = torch.arange(h)[None, :, None]
        xx = torch.arange(w)[None, None, :]
        half = cutout // 2
        hole = ((yy >= cy - half) & (yy < cy - half + cutout)
                & (xx >= cx - half) & (xx < cx - half + cutout))  # (B, H, W)
        x = x.masked_fill(hole[:, None], 0.0)
    return x.contiguous()


# --------------------------------------------------------------------------------------
# Datasets and loaders
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Batch:
    epoch: int
    indices: np.ndarray  # positions in the dataset


class ArrayDataset(torch.utils.data.Dataset):
    """Images held in memory as uint8; a whole batch is gathered, augmented and
    normalised at once (the DataLoader passes our _Batch to __getitems__)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std, *, augment=False,
                 cutout=0, seed=0):
        self.images = torch.from_numpy(np.ascontiguousarray(images))  # (N, C, H, W) uint8
        self.labels = torch.from_numpy(np.ascontiguousarray(labels))  # (N,) int64
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self.augment, self.cutout, self.seed = augment, cutout, seed

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x, y = self.__getitems__(_Batch(0, np.array([i])))
        return x[0], y[0]

    def __getitems__(self, batch: _Batch):
        idx = torch.from_numpy(batch.indices)
        x = self.images[idx].float().div_(255)  # (B, C, H, W) in [0, 1]
        if self.augment:
            x = augment_batch(x, batch.indices, seed=self.seed, epoch=batch.epoch,
                              cutout=0)
        x = (x - self.mean) / self.std
        if self.augment and self.cutout:
            x = augment_batch(x, batch.indices, seed=self.seed, epoch=batch.epoch,
                              crop_padding=0, flip=False, cutout=self.cutout)
        return x, self.labels[idx]


def _first(batch):
    return batch


class EpochBatchSampler(torch.utils.data.Sampler):
    """Yields batches of indices; the order is a permutation drawn from (seed, epoch).

    With world_size > 1 each rank takes every world_size-th index of the permutation
    (padded by wrapping so all ranks see as many batches), so the union of the ranks'
    k-th batches is the single-process k-th batch of global size batch_size*world_size.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            order = np.arange(self.n)
        else:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.n, generator=g).numpy()
        if self.world_size > 1:
            total = -(-self.n // self.world_size) * self.world_size
            order = np.resize(order, total)[self.rank::self.world_size]
        return order

    def __iter__(self):
        order = self._order()
        for s in range(0, len(order), self.batch_size):
            chunk = order[s:s + self.batch_size]
            if self.drop_last and len(chunk) < self.batch_size:
                return
            yield _Batch(self.epoch, chunk)

    def __len__(self):
        m = -(-self.n // self.world_size)
        return m // self.batch_size if self.drop_last else -(-m // self.batch_size)


def _balanced_pick(labels: np.ndarray, per_class: int, rng: np.random.Generator,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """`per_class` indices of each class, chosen by rng; sorted."""
    mask = np.ones(len(labels), bool)
    if exclude is not None:
        mask[exclude] = False
    picks = []
    for c in np.unique(labels):
        pool = np.flatnonzero((labels == c) & mask)
        if per_class > len(pool):
            raise ValueError(f"asked for {per_class} images of class {c}, only {len(pool)} left")
        picks.append(rng.choice(pool, per_class, replace=False))
    return np.sort(np.concatenate(picks))


# sizes per mode: (train images, validation images, test images); None = all
MODE_SIZES = {
    "smoke": (500, 200, 200),  # CI: seconds per notebook, numbers meaningless
    "quick": (5000, 1000, 2000),  # a student's laptop: a lesson trains in a minute or two
    "full": (None, None, None),  # everything; validation = val_fraction of train
}


@dataclass
class DatasetInfo:
    name: str
    title: str
    num_classes: int
    in_chans: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: Source
    mode: str
    sizes: dict[str, int] = field(default_factory=dict)
    capped: bool = False  # sizes were set explicitly (a subset even in full mode)
    given_sizes: dict[str, int | None] = field(default_factory=dict)  # as asked; None: the mode's

    @property
    def label(self) -> str:
        """What to print next to any result: dataset, which copy, and the subset."""
        sub = "" if (self.mode == "full" and not self.capped) or self.name == "synthetic" else (
            f"; {self.mode} mode, subset: {self.sizes['train']} train / {self.sizes['val']} val / "
            f"{self.sizes['test']} test images, class-balanced")
        return self.source.label + sub

    def as_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "mode": self.mode,
                "num_classes": self.num_classes, "in_chans": self.in_chans,
                "sizes": self.sizes, "source": self.source.as_dict()}


@dataclass
class DataBundle:
    """The three loaders, what they hold (``info``) and how they batch it: the one place
    the engine reads the data's facts from (:meth:`recipe`)."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    info: DatasetInfo
    batch_size: int = 0  # training batch of this process (the global batch / world_size)
    world_size: int = 1  # processes the training set is sharded over
    augment: bool = False  # crop + flip on the training batches
    cutout: int = 0  # Cutout hole side on the training batches (0: none)

    def set_epoch(self, epoch: int) -> None:
        """Call at the start of each epoch: new shuffle and new augmentation draws."""
        self.train.batch_sampler.set_epoch(epoch)

    def with_seed(self, seed: int) -> "DataBundle":
        """The same split (the same images in train, val and test), with the training
        batches' order and augmentation draws taken from `seed`: what a run with another
        seed on this bundle should see (compare.Study). The images are shared, not copied."""
        checks.integer("seed", seed, 0)
        old = self.train
        ds, sampler = copy.copy(old.dataset), copy.copy(old.batch_sampler)
        if hasattr(ds, "seed"):
            ds.seed = seed
        sampler.seed, sampler.epoch = seed, 0
        train = DataLoader(ds, batch_sampler=sampler, collate_fn=old.collate_fn,
                           num_workers=old.num_workers, persistent_workers=False)
        return dataclasses.replace(self, train=train)

    def recipe(self) -> dict:
        """What this data is, as the TrainConfig fields that would build it again
        (dataset, mode, train/val/test_size as they were asked for, None for the mode's,
        batch_size: the global batch, augment, cutout)."""
        info = self.info
        sizes = {f"{k}_size": info.given_sizes.get(k) for k in ("train", "val", "test")}
        return {"dataset": info.name, "mode": info.mode, **sizes,
                "batch_size": self.batch_size * self.world_size, "augment": self.augment,
                "cutout": self.cutout if self.augment else 0}

    def __iter__(self):  # allows `train, val, test = get_loaders(...)`
        return iter((self.train, self.val, self.test))


def get_loaders(dataset: str = "cifar10", *, root=None, mode: str = "quick",
                batch_size: int = 128, eval_batch_size: int = 512, seed: int = 0,
                augment: bool = True, cutout: int | bool = 0,
                train_size: int | None = None, val_size: int | None = None,
                test_size: int | None = None, val_fraction: float = 0.1,
                workers: int = 0, download: bool = True, rank: int = 0,
                world_size: int = 1, drop_last: bool = False) -> DataBundle:
    """Train / validation / test loaders for `dataset`.

    The validation split is carved from the training set, class-balanced and chosen by
    `seed` (the report validates on a held-out split); the test split is the official
    test set. In `quick` and `smoke` mode all three are deterministic class-balanced
    subsets (MODE_SIZES; override with train_size / val_size / test_size); for cifar10
    they are drawn from the embedded sample (module docstring), and `root` is not used.
    `cutout=True` means the report's setting (1 hole of 8 px); an int is the side.
    """
    spec = check_dataset(dataset)
    checks.one_of("mode", mode, MODES)
    checks.number("val_fraction", val_fraction, 0, 1, low_open=True, high_open=True)
    cutout = 8 if cutout is True else int(cutout or 0)
    checks.integer("cutout", cutout, 0)
    k = spec.num_classes
    given = {"train": train_size, "val": val_size, "test": test_size}
    capped = any(v is not None for v in given.values())
    d_train, d_val, d_test = MODE_SIZES[mode]
    train_size = train_size if train_size is not None else d_train
    val_size = val_size if val_size is not None else d_val
    test_size = test_size if test_size is not None else d_test
    for pname, v in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if v is not None and (v < k or v % k):
            raise ValueError(f"{pname}={v} must be a positive multiple of the number of "
                             f"classes ({k}) so that the subset is class-balanced")
    if dataset == "cifar10" and mode in SAMPLE_MODES:
        arrays, src = load_sample()  # the same images on every machine; root is not used
    else:
        arrays, src = load_arrays(dataset, root, download=download)
    (xtr, ytr), (xte, yte) = arrays["train"], arrays["test"]
    for pname, v, pool in (("train_size + val_size", (train_size or 0) + (val_size or 0), ytr),
                           ("test_size", test_size or 0, yte)):
        if v > len(pool):
            raise ValueError(
                f"{pname}={v} is more than the {len(pool)} images of {src.label}; allowed: "
                f"at most {len(pool)}" + (" (for more, use mode='full' with a full copy of "
                                          "the dataset and train_size=...)"
                                          if src.kind == "sample" else ""))
    if val_size is None:  # full mode: val_fraction of the training set, balanced
        val_size = int(len(ytr) * val_fraction) // k * k
    rng = np.random.default_rng(seed)
    val_idx = _balanced_pick(ytr, val_size // k, rng)
    if train_size is None:
        train_idx = np.setdiff1d(np.arange(len(ytr)), val_idx)
    else:
        train_idx = _balanced_pick(ytr, train_size // k, rng, exclude=val_idx)
    test_idx = (np.arange(len(yte)) if test_size is None
                else _balanced_pick(yte, test_size // k, np.random.default_rng(seed + 1)))
    info = DatasetInfo(spec.name, spec.title, k, spec.in_chans, spec.classes, spec.mean,
                       spec.std, src, mode, {}, capped, given)
    return bundle_from_arrays((xtr[train_idx], ytr[train_idx]), (xtr[val_idx], ytr[val_idx]),
                              (xte[test_idx], yte[test_idx]), info, batch_size=batch_size,
                              eval_batch_size=eval_batch_size, seed=seed, augment=augment,
                              cutout=cutout, workers=workers, rank=rank,
                              world_size=world_size, drop_last=drop_last)


def bundle_from_arrays(train, val, test, info: DatasetInfo, *, batch_size=128,
                       eval_batch_size=512, seed=0, augment=True, cutout=0, workers=0,
                       rank=0, world_size=1, drop_last=False) -> DataBundle:
    """Loaders over (images uint8 (N, C, H, W), labels int64 (N,)) array pairs, with the
    same sampling and augmentation as get_loaders. For your own data, and for tests that
    need no files (see `synthetic_bundle`)."""
    mk = dict(mean=info.mean, std=info.std, seed=seed)
    ds_train = ArrayDataset(*train, augment=augment, cutout=cutout, **mk)
    ds_val, ds_test = ArrayDataset(*val, **mk), ArrayDataset(*test, **mk)

    def loader(ds, bs, shuffle, drop):
        sampler = EpochBatchSampler(len(ds), bs, shuffle=shuffle, seed=seed, drop_last=drop,
                                    rank=rank if shuffle else 0,
                                    world_size=world_size if shuffle else 1)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=_first, num_workers=workers,
                          persistent_workers=False)

    info.sizes = {"train": len(ds_train), "val": len(ds_val), "test": len(ds_test)}
    return DataBundle(loader(ds_train, batch_size, True, drop_last),
                      loader(ds_val, eval_batch_size, False, False),
                      loader(ds_test, eval_batch_size, False, False), info,
                      batch_size=batch_size, world_size=world_size, augment=bool(augment),
                      cutout=int(cutout or 0))


def synthetic_bundle(n_train=256, n_val=64, n_test=64, *, num_classes=4, in_chans=3,
                     size=32, seed=0, mode="smoke", **kw) -> DataBundle:
    """A small learnable dataset made on the spot (class c: a bright square at a place that
    depends on c, plus noise). For tests and demos that must not depend on files. `mode`
    is recorded; sizes other than the mode's SYNTHETIC_SIZES count as given."""
    checks.one_of("mode", mode, MODES)
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % num_classes
        x = rng.integers(0, 80, size=(n, in_chans, size, size))
        for i, c in enumerate(y):
            r, col = divmod(int(c) * 7 % (size - 8), size - 8)
            x[i, :, r:r + 8, (col + 4 * c) % (size - 8):(col + 4 * c) % (size - 8) + 8] += 150
        return x.clip(0, 255).astype(np.uint8), y.astype(np.int64)

    src = Source("synthetic", "synthetic", Path("."), "synthetic squares (made on the spot)", False)
    given = {k: (n if n != d else None) for k, n, d in
             zip(("train", "val", "test"), (n_train, n_val, n_test), SYNTHETIC_SIZES[mode])}
    info = DatasetInfo("synthetic", "synthetic", num_classes, in_chans,
                       tuple(f"class{c}" for c in range(num_classes)), (0.3,) * in_chans,
                       (0.3,) * in_chans, src, mode, {},
                       any(v is not None for v in given.values()), given)
    return bundle_from_arrays(make(n_train), make(n_val), make(n_test), info, seed=seed, **kw)


def denormalize(x: torch.Tensor, info: DatasetInfo) -> torch.Tensor:
    """Undo the normalisation for display: (B, C, H, W) -> values in [0, 1]."""
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    return (x * std + mean).clamp(0, 1)


def class_counts(labels: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(labels), minlength=num_classes)


def main(argv=None) -> int:
    """`python -m course_utils.data prepare | list | make-sample`.

    prepare      check the embedded sample (what quick and smoke mode train on), then find,
                 check and cache each --dataset's full copy (for full mode);
    list         say which full copies are found here, without downloading;
    make-sample  rebuild the embedded sample from the JPEG archive (byte-identical).
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m course_utils.data",
                                 description=main.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("prepare", "list", "make-sample"))
    ap.add_argument("--dataset", nargs="*", default=[],
                    help="prepare: datasets whose full copy to find, check and cache "
                         f"(default: none); known: {', '.join(DATASETS)}")
    ap.add_argument("--root", default=None)
    ap.add_argument("--no-download", action="store_true")
    ap.add_argument("--archive", default=None,
                    help="make-sample: the JPEG archive cifar10-jpeg.tar.gz")
    ap.add_argument("--out", default=str(SAMPLE_DIR), help="make-sample: output folder")
    a = ap.parse_args(argv)
    if a.command == "list":
        for name, src in available_datasets(a.root).items():
            why = src.label + ' at ' + str(src.path) if isinstance(src, Source) else src
            print(f"{name:>14}: " + why.replace("\n", "\n" + " " * 16))
        return 0
    if a.command == "make-sample":
        return _make_sample_cli(a.archive, Path(a.out))
    rc = 0
    try:
        arrays, src = load_sample()
        print(f"[data] quick and smoke mode: {src.label}, {src.path}: "
              f"{len(arrays['train'][1])} train + {len(arrays['test'][1])} test images, "
              "checksums match")
    except DataIntegrityError as e:
        print(f"[data] the embedded sample: {e}")
        rc = 1
    for name in a.dataset:
        try:
            check_dataset(name)
            arrays, src = load_arrays(name, a.root, download=not a.no_download)
        except (ValueError, DataNotFoundError, DataIntegrityError) as e:
            print(f"[data] {name}: {e}")
            rc = 1
            continue
        print(f"[data] {name}: {src.label}, from {src.path}: "
              f"{len(arrays['train'][1])} train + {len(arrays['test'][1])} test images")
    return rc


def _make_sample_cli(archive: str | None, out: Path) -> int:
    from . import sample

    if archive is None or not Path(archive).is_file():
        print(f"[data] make-sample: --archive={archive!r} is not a file; allowed: the path "
              "of cifar10-jpeg.tar.gz")
        return 2
    want = MANIFEST["sample"]["source_archive_sha256"]
    got = _hash_file(Path(archive), "sha256")
    if got != want:
        print(f"[data] make-sample: {archive}: sha256 {got} is not the archive the sample "
              f"was drawn from ({want})")
        return 1
    written = sample.make_sample(archive, out)
    same = written == MANIFEST["sample"]["files"]
    for f, h in written.items():
        print(f"[data] {out / f}: {(out / f).stat().st_size:,} bytes, sha256 {h}")
    print("[data] identical to the manifest's files" if same else
          "[data] NOT the manifest's files: update course_utils/checksums.json (\"sample\")")
    return 0 if same else 1


def subset_sizes(dataset: str, subset: int | None) -> dict:
    """get_loaders keyword arguments that cap every split at about `subset` images
    (train: subset, validation and test: subset // 5), class-balanced; {} for None.
    Lets a notebook try the settings of another mode (e.g. full) on a small budget."""
    if subset is None:
        return {}
    k = check_dataset(dataset).num_classes
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < k:
        raise ValueError(f"subset={subset!r} is not allowed; allowed: None or an integer >= "
                         f"{k} (the number of classes of {dataset})")
    small = max(k, subset // 5 // k * k)
    return {"train_size": subset // k * k, "val_size": small, "test_size": small}


if __name__ == "__main__":
    raise SystemExit(main())
