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

import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

__all__ = [
    "DATASETS",
    "MODES",
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

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((Path(__file__).with_name("checksums.json")).read_text())
SAMPLE_DIR = REPO_ROOT / MANIFEST["sample"]["folder"]
SAMPLE_MODES = ("smoke", "quick")  # the modes that train on the embedded sample
MODES = ("smoke", "quick", "full")


class DataNotFoundError(FileNotFoundError):
    """No usable copy of a dataset was found; the message lists where we looked."""


class DataIntegrityError(RuntimeError):
    """A data file exists but is corrupt, truncated or not what its checksum says."""


# --------------------------------------------------------------------------------------
# Dataset descriptions
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    num_classes: int
    in_chans: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, on [0, 1] pixels
    std: tuple[float, ...]
    how_to_get: str


_CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                    "dog", "frog", "horse", "ship", "truck")
_FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10", 10, 3, _CIFAR10_CLASSES,
        # statistics of the official training set (the usual published values)
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        "put cifar10-jpeg.tar.gz (or torchvision's cifar-10-batches-py) in a folder and "
        "set COURSE_DATA to it, or pass root=...; on a machine with internet access "
        "torchvision downloads it into data/",
    ),
    "cifar100": DatasetSpec(
        "cifar100", "CIFAR-100", 100, 3, (),
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
        "on a machine with internet access torchvision downloads it into data/ "
        "(about 160 MB); or copy torchvision's cifar-100-python folder into COURSE_DATA",
    ),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "Fashion-MNIST", 10, 1, _FMNIST_CLASSES,
        # statistics of the 28x28 training images; the 2-pixel zero border added to
        # reach 32x32 is normalised with the same numbers
        (0.2860,), (0.3530,),
        "on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist; or put the four "
        "IDX .gz files in COURSE_DATA/FashionMNIST/raw; or let torchvision download them",
    ),
}


def _check_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(
            f"dataset={name!r} is not known; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not known; allowed: {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class Source:
    """Where a dataset was found and how to describe it wherever results are shown."""

    dataset: str
    kind: str  # "sample" | "torchvision" | "jpeg-archive" | "jpeg-folder" | "idx"
    path: Path
    label: str  # human-readable, says "JPEG re-encoding" when it is one
    official: bool  # False for the JPEG re-encoding

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "kind": self.kind, "path": str(self.path),
                "label": self.label, "official": self.official}


# --------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------
def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify_md5(path: Path, md5: str) -> None:
    if not path.is_file():
        raise DataIntegrityError(f"{path}: file is missing")
    got = _hash_file(path, "md5")
    if got != md5:
        raise DataIntegrityError(
            f"{path}: md5 {got} does not match torchvision's {md5}; the file is corrupt "
            "or truncated. Delete it and fetch it again.")


# --------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------
def _system_dirs(name: str) -> list[Path]:
    if name == "fashion_mnist":
        return [Path("/usr/share/datasets/fashion-mnist")]
    return []


def default_cache_dir() -> Path:
    """The repository's data/ folder (created on demand), or COURSE_CACHE if set."""
    env = os.environ.get("COURSE_CACHE")
    return Path(env) if env else REPO_ROOT / "data"


def _candidates(name: str, root: str | os.PathLike | None) -> list[tuple[Path, str]]:
    if root is not None:
        return [(Path(root).expanduser(), "root argument")]
    out: list[tuple[Path, str]] = []
    env = os.environ.get("COURSE_DATA")
    if env:
        out.append((Path(env).expanduser(), "COURSE_DATA"))
    out.append((default_cache_dir(), "repository data/ cache"))
    out += [(d, "system copy") for d in _system_dirs(name)]
    return out


_FMNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _probe(name: str, d: Path) -> Source | None:
    """Return a Source if folder d holds a recognised copy of dataset `name`."""
    if not d.is_dir():
        return None
    title = DATASETS[name].title
    if name == "cifar10":
        if (d / "cifar-10-batches-py").is_dir():
            return Source(name, "torchvision", d, f"{title} (official release)", True)
        for p in (d / "cifar10-jpeg.tar.gz", d / "cifar10" / "cifar10-jpeg.tar.gz"):
            if p.is_file():
                return Source(name, "jpeg-archive", p,
                              f"{title} (JPEG re-encoding, not the official release)", False)
        if (d / "cifar10" / "train").is_dir() and (d / "cifar10" / "test").is_dir():
            return Source(name, "jpeg-folder", d / "cifar10",
                          f"{title} (JPEG re-encoding, not the official release)", False)
    elif name == "cifar100":
        if (d / "cifar-100-python").is_dir():
            return Source(name, "torchvision", d, f"{title} (official release)", True)
    elif name == "fashion_mnist":
        for sub in (d / "FashionMNIST" / "raw", d / "fashion-mnist", d):
            if all((sub / f).is_file() or (sub / (f + ".gz")).is_file()
                   for f in _FMNIST_FILES):
                return Source(name, "idx", sub, f"{title} (official IDX files)", True)
    return None


def find_source(name: str, root: str | os.PathLike | None = None,
                download: bool = True) -> Source:
    """Find dataset `name` following the search order of the module docstring."""
    spec = _check_dataset(name)
    looked = []
    for d, why in _candidates(name, root):
        src = _probe(name, d)
        if src is not None:
            return src
        looked.append(f"  - {d} ({why}): {'no copy there' if d.is_dir() else 'no such folder'}")
    target = Path(root).expanduser() if root is not None else default_cache_dir()
    if download:
        err = _torchvision_download(name, target)
        if err is None:
            src = _probe(name, target)
            if src is not None:
                return src
        looked.append(f"  - torchvision download into {target}: failed ({err})")
    else:
        looked.append("  - torchvision download: not attempted (download=False)")
    raise DataNotFoundError(
        f"dataset {name!r} ({spec.title}) was not found. Looked in:\n" + "\n".join(looked)
        + f"\nHow to get it: {spec.how_to_get}.")


def _torchvision_download(name: str, target: Path) -> str | None:
    import torchvision.datasets as tvd

    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100,
           "fashion_mnist": tvd.FashionMNIST}[name]
    try:
        target.mkdir(parents=True, exist_ok=True)
        cls(str(target), train=True, download=True)
        cls(str(target), train=False, download=True)
    except Exception as e:  # noqa: BLE001 - any network failure ends up in the message
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    return None


# --------------------------------------------------------------------------------------
# Reading the files into arrays: images uint8 (N, C, H, W), labels int64 (N,)
# --------------------------------------------------------------------------------------
def _read_cifar_pickles(src: Source) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if src.dataset == "cifar10" else tvd.CIFAR100
    folder = src.path / cls.base_folder
    out = {}
    for split, files in (("train", cls.train_list), ("test", cls.test_list)):
        xs, ys = [], []
        for fname, md5 in files:
            p = folder / fname
            _verify_md5(p, md5)
            with open(p, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64))
        out[split] = (np.concatenate(xs), np.concatenate(ys))
    return out


def _decode_jpeg(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # noqa: BLE001
        raise DataIntegrityError(f"{where}: cannot decode image ({e})") from e
    if arr.shape != (32, 32, 3):
        raise DataIntegrityError(f"{where}: image is {arr.shape}, expected 32x32 RGB")
    return arr.transpose(2, 0, 1)  # (3, 32, 32)


def _collect(items, where: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """items: iterable of (split, class_name, file_name, bytes)."""
    per = {"train": [], "test": []}
    for split, cls_name, fname, data in items:
        if cls_name not in _CIFAR10_CLASSES:
            raise DataIntegrityError(f"{where}: unexpected class folder {cls_name!r}")
        per[split].append((_CIFAR10_CLASSES.index(cls_name), fname, data))
    out = {}
    for split, expected in (("train", 50000), ("test", 10000)):
        rows = sorted(per[split], key=lambda r: (r[0], r[1]))  # class, then file name
        if len(rows) != expected:
            raise DataIntegrityError(
                f"{where}: {split} split has {len(rows)} images, expected {expected}")
        x = np.stack([_decode_jpeg(d, f"{where}:{split}/{_CIFAR10_CLASSES[c]}/{n}")
                      for c, n, d in rows])
        y = np.array([c for c, _, _ in rows], dtype=np.int64)
        out[split] = (x, y)
    return out


def _read_jpeg_archive(src: Source) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    entry = MANIFEST["archives"].get(src.path.name)
    if entry is None:
        raise DataIntegrityError(
            f"{src.path}: no checksum for this file name in course_utils/checksums.json")
    got = _hash_file(src.path, "sha256")
    if got != entry["sha256"]:
        raise DataIntegrityError(
            f"{src.path}: sha256 {got} does not match the manifest's {entry['sha256']}; "
            "the archive is corrupt or truncated. Copy it again.")
    cache = default_cache_dir() / f"cifar10-jpeg-{got[:12]}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return {s: (z[f"{s}_x"], z[f"{s}_y"]) for s in ("train", "test")}
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt from the archive
            cache.unlink(missing_ok=True)

    def items():
        try:
            with tarfile.open(src.path, "r:gz") as tar:
                for m in tar:
                    parts = Path(m.name).parts
                    if m.isfile() and len(parts) == 4 and parts[1] in ("train", "test"):
                        yield parts[1], parts[2], parts[3], tar.extractfile(m).read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise DataIntegrityError(f"{src.path}: cannot read archive ({e})") from e

    arrays = _collect(items(), str(src.path))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, **{f"{s}_{k}": arrays[s][i] for s in arrays
                          for i, k in enumerate("xy")})
        os.replace(tmp, cache)  # atomic: a killed process never leaves a half cache
    except OSError:
        pass  # read-only cache folder: decode again next time
    return arrays


def _read_jpeg_folder(src: Source) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def items():
        for split in ("train", "test"):
            for cdir in sorted((src.path / split).iterdir()):
                for f in sorted(cdir.glob("*.jpg")):
                    yield split, cdir.name, f.name, f.read_bytes()

    return _collect(items(), str(src.path))


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or .gz), check its manifest checksum, return an array."""
    gz = path.with_name(path.name + ".gz")
    p = path if path.is_file() else gz
    try:
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    except (EOFError, OSError, zlib.error) as e:
        raise DataIntegrityError(f"{p}: cannot decompress ({e}); the file is corrupt "
                                 "or truncated") from e
    want = MANIFEST["decompressed"].get(path.name)
    got = hashlib.sha256(raw).hexdigest()
    if want is not None and got != want:
        raise DataIntegrityError(
            f"{p}: sha256 of the contents {got} does not match the manifest's {want}; "
            "the file is corrupt or truncated")
    if len(raw) < 8 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataIntegrityError(f"{p}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DataIntegrityError(f"{p}: truncated ({len(raw) - offset} bytes of data, "
                                 f"header says {int(np.prod(dims))})")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _read_fashion_mnist(src: Source) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        x = _read_idx(src.path / f"{stem}-images-idx3-ubyte")  # (N, 28, 28)
        y = _read_idx(src.path / f"{stem}-labels-idx1-ubyte").astype(np.int64)
        if len(x) != len(y):
            raise DataIntegrityError(f"{src.path}: {split} has {len(x)} images, {len(y)} labels")
        # Pad 28x28 to 32x32 with a 2-pixel zero border, one channel (in_chans=1):
        # the CIFAR models apply unchanged except for their first convolution.
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]  # (N, 1, 32, 32)
        out[split] = (x, y)
    return out


def load_arrays(name: str, root: str | os.PathLike | None = None,
                download: bool = True) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], Source]:
    """All images of a dataset as uint8 (N, C, 32, 32) arrays plus labels, and the Source."""
    src = find_source(name, root, download=download)
    reader = {"torchvision": _read_cifar_pickles, "jpeg-archive": _read_jpeg_archive,
              "jpeg-folder": _read_jpeg_folder, "idx": _read_fashion_mnist}[src.kind]
    return reader(src), src


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


def available_datasets(root=None) -> dict[str, Source | str]:
    """For each known dataset: its Source if present here (no download), else why not."""
    out: dict[str, Source | str] = {}
    for name in DATASETS:
        try:
            out[name] = find_source(name, root, download=False)
        except DataNotFoundError as e:
            out[name] = str(e).splitlines()[0]
    return out


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
    train: DataLoader
    val: DataLoader
    test: DataLoader
    info: DatasetInfo

    def set_epoch(self, epoch: int) -> None:
        """Call at the start of each epoch: new shuffle and new augmentation draws."""
        self.train.batch_sampler.set_epoch(epoch)

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
    spec = _check_dataset(dataset)
    _check_mode(mode)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction} must be in (0, 1)")
    cutout = 8 if cutout is True else int(cutout or 0)
    if cutout < 0:
        raise ValueError(f"cutout={cutout} must be >= 0 (hole side in pixels)")
    k = spec.num_classes
    capped = any(v is not None for v in (train_size, val_size, test_size))
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
                       spec.std, src, mode, {}, capped)
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
                      loader(ds_test, eval_batch_size, False, False), info)


def synthetic_bundle(n_train=256, n_val=64, n_test=64, *, num_classes=4, in_chans=3,
                     size=32, seed=0, **kw) -> DataBundle:
    """A small learnable dataset made on the spot (class c: a bright square at a place that
    depends on c, plus noise). For tests and demos that must not depend on files."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % num_classes
        x = rng.integers(0, 80, size=(n, in_chans, size, size))
        for i, c in enumerate(y):
            r, col = divmod(int(c) * 7 % (size - 8), size - 8)
            x[i, :, r:r + 8, (col + 4 * c) % (size - 8):(col + 4 * c) % (size - 8) + 8] += 150
        return x.clip(0, 255).astype(np.uint8), y.astype(np.int64)

    src = Source("synthetic", "synthetic", Path("."), "synthetic squares (made on the spot)", False)
    info = DatasetInfo("synthetic", "synthetic", num_classes, in_chans,
                       tuple(f"class{c}" for c in range(num_classes)), (0.3,) * in_chans,
                       (0.3,) * in_chans, src, "smoke")
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
            print(f"{name:>14}: {src.label + ' at ' + str(src.path) if isinstance(src, Source) else src}")
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
            _check_dataset(name)
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
    k = _check_dataset(dataset).num_classes
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < k:
        raise ValueError(f"subset={subset!r} is not allowed; allowed: None or an integer >= "
                         f"{k} (the number of classes of {dataset})")
    small = max(k, subset // 5 // k * k)
    return {"train_size": subset // k * k, "val_size": small, "test_size": small}


if __name__ == "__main__":
    raise SystemExit(main())
