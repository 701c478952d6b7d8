"""Finding, checking and reading the dataset files (the first half of :mod:`course_utils.data`).

:func:`find_source` follows the search order of :mod:`course_utils.data`'s docstring and
returns a :class:`Source` that says which copy it found (official, or the JPEG
re-encoding of CIFAR-10); :func:`load_arrays` reads it into uint8 arrays, checking every
file first (torchvision's md5 lists for official files, the manifest ``checksums.json``
for the rest). Everything here is re-exported by :mod:`course_utils.data`, which is
where lessons and the engine import it from.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checks
from .files import atomic_open
from .sample import decode_jpeg32

__all__ = ["DATASETS", "MANIFEST", "REPO_ROOT", "DataIntegrityError", "DataNotFoundError",
           "DatasetSpec", "Source", "available_datasets", "default_cache_dir", "find_source",
           "load_arrays"]

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((Path(__file__).with_name("checksums.json")).read_text())


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


def check_dataset(name: str) -> DatasetSpec:
    """The DatasetSpec of `name`; a name that is not known raises checks.BadValue."""
    checks.one_of("dataset", name, sorted(DATASETS))
    return DATASETS[name]


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
    spec = check_dataset(name)
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
        x = np.stack([decode_jpeg32(d, f"{where}:{split}/{_CIFAR10_CLASSES[c]}/{n}",
                                    DataIntegrityError) for c, n, d in rows])
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
        with atomic_open(cache, "wb", mkdir=True) as f:  # a killed process leaves no half cache
            np.savez(f, **{f"{s}_{k}": arrays[s][i] for s in arrays for i, k in enumerate("xy")})
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



def available_datasets(root=None) -> dict[str, Source | str]:
    """For each known dataset: its Source if present here (no download), else why not
    (the whole message: where the kit looked and how to get the dataset)."""
    out: dict[str, Source | str] = {}
    for name in DATASETS:
        try:
            out[name] = find_source(name, root, download=False)
        except DataNotFoundError as e:
            out[name] = str(e)
    return out

