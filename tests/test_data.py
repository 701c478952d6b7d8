import gzip
import io
import os
import shutil
import tarfile

import numpy as np
import pytest
import torch

from course_utils import data, sample
from conftest import needs_fmnist, needs_full_cifar10


# ---------------------------------------------------------------- argument checking
def test_unknown_dataset_and_mode_are_named():
    with pytest.raises(ValueError, match=r"dataset='imagenet'.*cifar10"):
        data.get_loaders("imagenet")
    with pytest.raises(ValueError, match=r"mode='fast'.*smoke, quick, full"):
        data.get_loaders("cifar10", mode="fast")


def test_not_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(data.DataNotFoundError) as e:
        data.find_source("cifar100", download=False)
    msg = str(e.value)
    assert str(tmp_path / "nothing") in msg and "COURSE_DATA" in msg
    assert str(tmp_path / "cache") in msg and "How to get it" in msg


# ---------------------------------------------------------------- search order
def _fake_official(d):
    (d / "cifar-10-batches-py").mkdir(parents=True)
    return d


def test_search_order_root_then_env_then_cache(tmp_path, monkeypatch):
    a, b, c = (_fake_official(tmp_path / n) for n in "abc")
    monkeypatch.setenv("COURSE_DATA", str(b))
    monkeypatch.setenv("COURSE_CACHE", str(c))
    assert data.find_source("cifar10", root=a, download=False).path == a
    assert data.find_source("cifar10", download=False).path == b
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "empty"))
    assert data.find_source("cifar10", download=False).path == c


def test_explicit_root_is_the_only_place_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(_fake_official(tmp_path / "env")))
    with pytest.raises(data.DataNotFoundError, match="root argument"):
        data.find_source("cifar10", root=tmp_path / "empty", download=False)


def test_jpeg_copy_is_labelled_as_such(tmp_path):
    (tmp_path / "cifar10-jpeg.tar.gz").write_bytes(b"x")
    src = data.find_source("cifar10", root=tmp_path, download=False)
    assert src.kind == "jpeg-archive" and not src.official
    assert "JPEG re-encoding" in src.label and "not the official" in src.label


# ---------------------------------------------------------------- integrity
def test_truncated_archive_in_course_data_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    bad = tmp_path / "cifar10-jpeg.tar.gz"
    real = data.REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    # the first 64 kB of the real archive when it is here, else random bytes
    bad.write_bytes(real.read_bytes()[:65536] if real.is_file() else os.urandom(65536))
    with pytest.raises(data.DataIntegrityError, match=str(bad)):
        data.get_loaders("cifar10", mode="full", download=False)


def _idx(arr):
    hdr = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return hdr + arr.astype(np.uint8).tobytes()


def test_truncated_idx_in_course_data_names_the_file(tmp_path, monkeypatch):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem, n in (("train", 20), ("t10k", 10)):
        (raw / f"{stem}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx(np.zeros((n, 28, 28)))))
        (raw / f"{stem}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.arange(n) % 10)))
    target = raw / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-40])  # cut the end off
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    with pytest.raises(data.DataIntegrityError, match="train-images-idx3-ubyte.gz"):
        data.get_loaders("fashion_mnist", download=False)


def test_idx_with_wrong_contents_fails_its_checksum(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("train", "t10k"):
        (raw / f"{stem}-images-idx3-ubyte").write_bytes(_idx(np.zeros((10, 28, 28))))
        (raw / f"{stem}-labels-idx1-ubyte").write_bytes(_idx(np.arange(10)))
    with pytest.raises(data.DataIntegrityError, match="train-images-idx3-ubyte.*sha256"):
        data.load_arrays("fashion_mnist", root=tmp_path, download=False)


def test_official_cifar_pickle_with_wrong_md5(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(data.DataIntegrityError, match="data_batch_1.*md5"):
        data.load_arrays("cifar10", root=tmp_path, download=False)


# ---------------------------------------------------------------- augmentation
def test_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.rand(16, 3, 32, 32)
    idx = np.arange(16)
    y = data.augment_batch(x, idx, seed=3, epoch=0, crop_padding=4, flip=False)
    xp = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        found = any(torch.equal(y[i], xp[i, :, r:r + 32, c:c + 32])
                    for r in range(9) for c in range(9))
        assert found, f"image {i} is not a crop of its padded original"


def test_flip_and_cutout():
    x = torch.rand(64, 1, 32, 32) + 1.0  # strictly positive: a zero can only be the hole
    idx = np.arange(64)
    f = data.augment_batch(x, idx, seed=0, epoch=0, crop_padding=0, flip=True)
    flipped = [torch.equal(f[i], x[i].flip(2)) for i in range(64)]
    kept = [torch.equal(f[i], x[i]) for i in range(64)]
    assert all(a or b for a, b in zip(flipped, kept)) and 10 < sum(flipped) < 54
    c = data.augment_batch(x, idx, seed=0, epoch=0, crop_padding=0, flip=False, cutout=8)
    holes = (c == 0).sum(dim=(1, 2, 3))
    assert holes.max() == 64  # an 8x8 hole fully inside
    assert (holes > 0).all() and (holes <= 64).all()


def test_augmentation_depends_only_on_seed_epoch_index():
    x = torch.rand(32, 3, 32, 32)
    idx = np.arange(100, 132)
    kw = dict(crop_padding=4, flip=True, cutout=8)
    a = data.augment_batch(x, idx, seed=1, epoch=4, **kw)
    assert torch.equal(a[7:9], data.augment_batch(x[7:9], idx[7:9], seed=1, epoch=4, **kw))
    assert not torch.equal(a, data.augment_batch(x, idx, seed=1, epoch=5, **kw))
    assert not torch.equal(a, data.augment_batch(x, idx, seed=2, epoch=4, **kw))


def test_sharded_batches_union_to_the_single_process_batch():
    single = list(data.EpochBatchSampler(100, 20, shuffle=True, seed=5))
    ranks = [list(data.EpochBatchSampler(100, 10, shuffle=True, seed=5, rank=r, world_size=2))
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for k, b in enumerate(single):
        union = np.sort(np.concatenate([ranks[0][k].indices, ranks[1][k].indices]))
        assert np.array_equal(union, np.sort(b.indices))


def test_epoch_changes_the_order():
    s = data.EpochBatchSampler(50, 50, shuffle=True, seed=0)
    first = next(iter(s)).indices
    s.set_epoch(1)
    assert not np.array_equal(first, next(iter(s)).indices)
    s.set_epoch(0)
    assert np.array_equal(first, next(iter(s)).indices)


# ---------------------------------------------------------------- real data
def test_cifar10_quick_splits_are_balanced_disjoint_and_seeded():
    d = data.get_loaders("cifar10", mode="quick", seed=0)
    assert d.info.sizes == {"train": 5000, "val": 1000, "test": 2000}
    for split, n in (("train", 500), ("val", 100), ("test", 200)):
        labels = getattr(d, split).dataset.labels.numpy()
        assert (np.bincount(labels, minlength=10) == n).all(), split
    assert d.info.source.kind == "sample"
    assert d.info.label.startswith("CIFAR-10 sample, 10,000 images, JPEG re-encoding")
    x, y = next(iter(d.train))
    assert x.shape == (128, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    # the same seed gives the same split, another seed another one
    d2 = data.get_loaders("cifar10", mode="quick", seed=0)
    d3 = data.get_loaders("cifar10", mode="quick", seed=1)
    assert torch.equal(d.val.dataset.images, d2.val.dataset.images)
    assert not torch.equal(d.val.dataset.images, d3.val.dataset.images)
    # validation images are never training images (compare raw pixels)
    tr = {bytes(v.numpy()) for v in d.train.dataset.images}
    assert not any(bytes(v.numpy()) in tr for v in d.val.dataset.images)


@needs_full_cifar10
def test_cifar10_full_holds_out_val_fraction():
    d = data.get_loaders("cifar10", mode="full", seed=0, val_fraction=0.1)
    assert d.info.sizes == {"train": 45000, "val": 5000, "test": 10000}
    assert d.info.label == d.info.source.label  # no subset note in full mode


@needs_fmnist
def test_fashion_mnist_is_one_channel_32x32_with_a_zero_border():
    d = data.get_loaders("fashion_mnist", mode="smoke", augment=False)
    imgs = d.train.dataset.images
    assert imgs.shape[1:] == (1, 32, 32) and d.info.in_chans == 1
    assert imgs[:, :, :2].max() == 0 and imgs[:, :, :, -2:].max() == 0
    assert imgs[:, :, 2:30, 2:30].float().mean() > 50


def test_subset_size_must_be_balanced(tmp_path):
    # checked before any file is read, so no data is needed
    with pytest.raises(ValueError, match=r"train_size=55 .*multiple of the number of classes \(10\)"):
        data.get_loaders("cifar10", train_size=55, root=tmp_path, download=False)
    with pytest.raises(ValueError, match=r"cutout=-1"):
        data.get_loaders("cifar10", cutout=-1, root=tmp_path, download=False)


def test_subset_sizes_caps_every_split_class_balanced():
    assert data.subset_sizes("cifar10", None) == {}
    assert data.subset_sizes("cifar10", 205) == {"train_size": 200, "val_size": 40, "test_size": 40}
    assert data.subset_sizes("cifar10", 12) == {"train_size": 10, "val_size": 10, "test_size": 10}
    with pytest.raises(ValueError, match="subset=5 is not allowed"):
        data.subset_sizes("cifar10", 5)


# ---------------------------------------------------------------- the embedded sample
def test_sample_files_match_the_manifest_and_stay_small():
    entry = data.MANIFEST["sample"]
    total = 0
    for name, sha in entry["files"].items():
        path = data.SAMPLE_DIR / name
        assert sample.sha256(path) == sha, name
        assert path.stat().st_size < 2_000_000, name
        total += path.stat().st_size
    assert total < 4_200_000
    arrays, src = data.load_sample()
    assert src.kind == "sample" and not src.official
    for split, per in (("train", 800), ("test", 200)):
        x, y = arrays[split]
        assert x.shape == (10 * per, 3, 32, 32) and x.dtype == np.uint8
        assert (np.bincount(y, minlength=10) == per).all()


@pytest.mark.parametrize("damage", ["truncate", "alter", "delete"])
def test_damaged_sample_file_is_named(tmp_path, monkeypatch, damage):
    copy = tmp_path / "cifar10-sample"
    shutil.copytree(data.SAMPLE_DIR, copy)
    target = copy / "train-1.pack.xz"
    blob = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(blob[: len(blob) // 2])
    elif damage == "alter":
        target.write_bytes(blob[:1000] + bytes([blob[1000] ^ 1]) + blob[1001:])
    else:
        target.unlink()
    monkeypatch.setattr(data, "SAMPLE_DIR", copy)
    with pytest.raises(data.DataIntegrityError, match=str(target)):
        data.get_loaders("cifar10", mode="smoke")


def test_quick_mode_uses_the_sample_whatever_else_is_installed(tmp_path, monkeypatch):
    # a (fake) official copy in COURSE_DATA and in an explicit root: quick mode ignores both
    monkeypatch.setenv("COURSE_DATA", str(_fake_official(tmp_path / "env")))
    a = data.get_loaders("cifar10", mode="smoke", seed=3)
    b = data.get_loaders("cifar10", mode="smoke", seed=3, root=_fake_official(tmp_path / "r"))
    assert a.info.source.kind == b.info.source.kind == "sample"
    assert torch.equal(a.train.dataset.images, b.train.dataset.images)
    # while full mode looks for the full copy (this fake one has no files in it)
    with pytest.raises(data.DataIntegrityError, match="data_batch_1"):
        data.get_loaders("cifar10", mode="full", download=False)


def test_asking_for_more_than_the_sample_holds_is_a_clear_error():
    with pytest.raises(ValueError, match=r"train_size \+ val_size=8010 is more than the 8000"):
        data.get_loaders("cifar10", mode="quick", train_size=7010, val_size=1000)
    with pytest.raises(ValueError, match=r"test_size=2010 is more than the 2000 .*sample"):
        data.get_loaders("cifar10", mode="quick", test_size=2010)


def _fake_archive(path, per_split=(("train", 6), ("test", 3))):
    from PIL import Image

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in per_split:
            for c in sample.CLASSES:
                for i in range(n):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                        buf, "JPEG", quality=75)
                    info = tarfile.TarInfo(f"cifar10/{split}/{c}/{i:04d}.jpg")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))
    return path


def test_make_sample_is_byte_identical_and_keeps_the_jpeg_bytes(tmp_path):
    archive = _fake_archive(tmp_path / "fake.tar.gz")
    kw = dict(per_class={"train": 4, "test": 2}, available={"train": 6, "test": 3},
              shards={"train": 2, "test": 1}, seed=5)
    first = sample.make_sample(archive, tmp_path / "a", **kw)
    second = sample.make_sample(archive, tmp_path / "b", **kw)
    assert first == second and sorted(first) == ["test-0.pack.xz", "train-0.pack.xz",
                                                 "train-1.pack.xz"]
    for f in first:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    # the packed files are the archive's own bytes, the chosen ones, in class order
    with tarfile.open(archive) as tar:
        orig = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    picks = sample.choose(kw["per_class"], 5, kw["available"])
    index, jpegs = sample.decode_pack((tmp_path / "a" / "test-0.pack.xz").read_bytes())
    want = [orig[f"cifar10/test/{sample.CLASSES[c]}/{i:04d}.jpg"]
            for c, per in enumerate(picks["test"]) for i in per]
    assert jpegs == want and len(jpegs) == 20
    assert [e[0] for e in index["entries"]] == [c for c in range(10) for _ in range(2)]
    # a different seed draws other images
    other = sample.make_sample(archive, tmp_path / "c", **{**kw, "seed": 6})
    assert other != first


REAL_ARCHIVE = data.REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason="the JPEG archive the sample was drawn "
                    "from is not on this machine (only the committed sample is)")
def test_make_sample_from_the_real_archive_rebuilds_the_committed_files(tmp_path):
    assert data.main(["make-sample", "--archive", str(REAL_ARCHIVE),
                      "--out", str(tmp_path)]) == 0
    for name, sha in data.MANIFEST["sample"]["files"].items():
        assert (tmp_path / name).read_bytes() == (data.SAMPLE_DIR / name).read_bytes()


def test_make_sample_refuses_a_missing_archive(tmp_path, capsys):
    assert data.main(["make-sample", "--archive", str(tmp_path / "no.tar.gz"),
                      "--out", str(tmp_path / "o")]) == 2
    assert "--archive=" in capsys.readouterr().out and not (tmp_path / "o").exists()
