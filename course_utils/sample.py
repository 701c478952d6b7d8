"""The CIFAR-10 sample embedded in the kit: what quick and smoke mode train on.

A class-balanced pool of the third-party JPEG re-encoding of CIFAR-10
(``cifar10-jpeg.tar.gz``): 800 training and 200 test images per class, 10,000 in all,
chosen by ``numpy.random.default_rng(SEED)`` from each class's files. The JPEG bytes are
kept exactly as they are in the archive (no second encoding); they are stored in
``data/cifar10-sample/`` as a few *packs*, each one xz-compressed file::

    b"CKIT-JPEG-PACK 1\\n"                      magic and format version
    {"split": ..., "entries": [[c, "NNNN", n], ...]}\\n   one JSON line: class index,
                                                the file's stem in the archive, byte count
    <the JPEG files, concatenated in entry order>

The tiny JPEGs share a 623-byte header (their quantisation and Huffman tables), which
the compression stores once: the 10,000 images take about 3 MB instead of 9 MB of raw
JPEG files (a tar of them would also add a 512-byte header per file).

Every pack's sha256 is in ``course_utils/checksums.json`` (``"sample"``); a missing,
truncated or altered pack raises :class:`~course_utils.data.DataIntegrityError` naming
it. ``python -m course_utils.data make-sample --archive PATH`` rebuilds the packs from the
archive, byte for byte the same.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import tarfile
import zlib
from pathlib import Path

import numpy as np

from .files import atomic_write_bytes

MAGIC = b"CKIT-JPEG-PACK 1\n"
SEED = 2009  # the year of Krizhevsky's CIFAR-10 report
PER_CLASS = {"train": 800, "test": 200}  # of 5,000 and 1,000 per class in the archive
SHARDS = {"train": 2, "test": 1}  # packs per split (each well under 2 MB)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
ARCHIVE_SIZES = {"train": 5000, "test": 1000}  # images per class in the full archive
_XZ = dict(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)


class PackError(ValueError):
    """A pack's contents are not what the format says."""


def choose(per_class: dict[str, int] = PER_CLASS, seed: int = SEED,
           available: dict[str, int] = ARCHIVE_SIZES) -> dict[str, list[list[int]]]:
    """For each split, for each class, the sorted file numbers (0..available-1) chosen."""
    rng = np.random.default_rng(seed)
    return {split: [sorted(int(i) for i in rng.choice(available[split], n, replace=False))
                    for _ in CLASSES]
            for split, n in per_class.items()}


def pack_name(split: str, shard: int) -> str:
    return f"{split}-{shard}.pack.xz"


def encode_pack(split: str, entries: list[tuple[int, str, bytes]]) -> bytes:
    """entries: (class index, file stem, JPEG bytes); returns the compressed pack."""
    index = {"split": split, "entries": [[c, stem, len(b)] for c, stem, b in entries]}
    payload = (MAGIC + json.dumps(index, separators=(",", ":")).encode() + b"\n"
               + b"".join(b for _, _, b in entries))
    return lzma.compress(payload, **_XZ)


def decode_pack(blob: bytes) -> tuple[dict, list[bytes]]:
    """The pack's index and its JPEG files (bytes), in entry order."""
    try:
        payload = lzma.decompress(blob)
    except lzma.LZMAError as e:
        raise PackError(f"cannot decompress ({e})") from e
    if not payload.startswith(MAGIC):
        raise PackError("not a kit JPEG pack (wrong magic)")
    end = payload.index(b"\n", len(MAGIC))
    index = json.loads(payload[len(MAGIC):end])
    pos, files = end + 1, []
    for _, _, n in index["entries"]:
        files.append(payload[pos:pos + n])
        pos += n
    if pos != len(payload) or any(len(f) != n for f, (_, _, n) in zip(files, index["entries"])):
        raise PackError(f"{len(payload) - end - 1} bytes of images, the index says "
                        f"{sum(n for _, _, n in index['entries'])}")
    return index, files


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _archive_members(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    got = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                if m.isfile() and m.name in wanted:
                    got[m.name] = tar.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise PackError(f"{archive}: cannot read archive ({e})") from e
    missing = sorted(wanted - set(got))
    if missing:
        raise PackError(f"{archive}: {len(missing)} chosen images are not in the archive, "
                        f"e.g. {missing[0]}")
    return got


def make_sample(archive: str | os.PathLike, out: str | os.PathLike, *,
                per_class: dict[str, int] = PER_CLASS, seed: int = SEED,
                shards: dict[str, int] = SHARDS,
                available: dict[str, int] = ARCHIVE_SIZES) -> dict[str, str]:
    """Write the sample's packs from the JPEG archive into `out`; returns {file: sha256}.

    Deterministic: the same archive and arguments give byte-identical files. Each pack is
    written to a temporary name and renamed, so a killed run leaves no half-written pack.
    """
    archive, out = Path(archive), Path(out)
    picks = choose(per_class, seed, available)
    names = {split: [[f"cifar10/{split}/{CLASSES[c]}/{i:04d}.jpg" for i in idx]
                     for c, idx in enumerate(per)] for split, per in picks.items()}
    files = _archive_members(archive, {n for per in names.values() for c in per for n in c})
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, per in names.items():
        entries = [(c, Path(n).stem, files[n]) for c, ns in enumerate(per) for n in ns]
        k = shards[split]
        bounds = np.linspace(0, len(entries), k + 1).round().astype(int)
        for s in range(k):
            blob = encode_pack(split, entries[bounds[s]:bounds[s + 1]])
            target = out / pack_name(split, s)
            atomic_write_bytes(target, blob)
            written[target.name] = hashlib.sha256(blob).hexdigest()
    return written


def decode_jpeg32(blob: bytes, where: str, error) -> np.ndarray:
    """A 32x32 RGB JPEG as a uint8 (3, 32, 32) array; anything else raises
    ``error(message)`` naming `where`."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # noqa: BLE001 - any decoder failure, as one clear message
        raise error(f"{where}: cannot decode image ({e})") from e
    if arr.shape != (32, 32, 3):
        raise error(f"{where}: image is {arr.shape}, expected 32x32 RGB")
    return arr.transpose(2, 0, 1)  # (3, 32, 32)


def read_sample(folder: Path, manifest: dict, error) -> dict[str, tuple]:
    """Check every pack against the manifest and decode the images.

    Returns {split: (images uint8 (N, 3, 32, 32), labels int64 (N,), stems)}; `error`
    is the exception class to raise (the data layer's DataIntegrityError).
    """
    per = {"train": ([], [], []), "test": ([], [], [])}
    for fname, want in manifest["files"].items():
        path = folder / fname
        if not path.is_file():
            raise error(f"{path}: the sample file is missing. Restore it with "
                        f"`git checkout -- {folder.name}` in data/, or rebuild it with "
                        "`python -m course_utils.data make-sample --archive PATH`.")
        blob = path.read_bytes()
        got = hashlib.sha256(blob).hexdigest()
        if got != want:
            raise error(f"{path}: sha256 {got} does not match the manifest's {want}; the "
                        "sample file is truncated or altered. Restore it with git (git "
                        "checkout -- data/) or rebuild it with `python -m course_utils.data "
                        "make-sample --archive PATH`.")
        try:
            index, jpegs = decode_pack(blob)
        except PackError as e:
            raise error(f"{path}: {e}") from e
        xs, ys, stems = per[index["split"]]
        for (c, stem, _), b in zip(index["entries"], jpegs):
            xs.append(decode_jpeg32(b, f"{path}: image {CLASSES[c]}/{stem}", error))
            ys.append(c)
            stems.append(f"{CLASSES[c]}/{stem}")
    out = {}
    for split, (xs, ys, stems) in per.items():
        if not xs:
            raise error(f"{folder}: the sample has no {split} images")
        out[split] = (np.stack(xs), np.asarray(ys, dtype=np.int64), stems)
    return out
