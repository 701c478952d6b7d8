"""The reference results' pipeline on a tiny run (synthetic data, seconds): the runner's
folder is published small (no training checkpoints, one named model at most 1 MB, a
results.json with provenance per run), read back by reference.load, its checkpoint
re-evaluated to the stored accuracy and its first epoch trained again to the stored line."""

import json

import pytest

from course_utils import reference
from course_utils.ablate import run_table, select_rows
from conftest import needs_full_cifar10


@pytest.fixture(scope="module")
def published(tmp_path_factory, one_torch_thread):
    tmp = tmp_path_factory.mktemp("reference")
    run_table(select_rows(["densenet"]), seeds=1, mode="smoke", out=tmp / "runs",
              dataset="synthetic", log=lambda *_: None,
              overrides={"train_size": 160, "val_size": 40, "test_size": 40, "epochs": 2})
    info = reference.publish(tmp / "runs", tmp / "ref" / "table1", checkpoints=["densenet/seed0"],
                             log=lambda *_: None)
    return tmp, info


def test_publish_keeps_what_lessons_read_and_no_training_checkpoint(published):
    tmp, info = published
    run = tmp / "ref" / "table1" / "densenet" / "seed0"
    assert info["runs"] == 1 and info["checkpoints"] == [str(run / "model.pt")]
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.jsonl", "model.pt",
                                                     "results.json", "summary.json"]
    assert 0 < (run / "model.pt").stat().st_size <= reference.MAX_CHECKPOINT_BYTES
    res = json.loads((run / "results.json").read_text())
    prov = res["provenance"]
    for key in ("date", "host", "device", "torch", "git_commit", "command", "run_command", "seed"):
        assert key in prov, key
    assert res["row"] == "densenet" and res["seed"] == 0 and res["status"] == "completed"
    assert (tmp / "ref" / "table1" / "results.json").is_file()


def test_load_reads_every_run_and_refuses_a_missing_folder(published):
    tmp, _ = published
    ref = reference.load("table1", root=tmp / "ref")
    assert set(ref["runs"]) == {("densenet", 0)}
    run = ref["runs"][("densenet", 0)]
    assert [m["epoch"] for m in run["metrics"]] == [1, 2]
    assert run["results"]["provenance"]["date"]
    with pytest.raises(reference.ReferenceMissing, match="'nothing_here'"):
        reference.load("nothing_here", root=tmp / "ref")


def test_the_stored_checkpoint_gives_the_stored_test_accuracy(published):
    tmp, _ = published
    r = reference.check_checkpoint(tmp / "ref" / "table1" / "densenet" / "seed0")
    assert r["images"] == 40 and r["measured"] == r["stored"]


def test_the_first_epoch_trains_again_to_the_stored_line(published):
    tmp, _ = published
    r = reference.first_epoch(tmp / "ref" / "table1" / "densenet" / "seed0")
    for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert r["measured"][k] == pytest.approx(r["stored"][k], rel=1e-5, abs=1e-7), k


def test_an_oversized_checkpoint_is_refused_before_anything_is_written(published, monkeypatch):
    tmp, _ = published
    monkeypatch.setattr(reference, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(ValueError, match="at most 1,000"):
        reference.publish(tmp / "runs", tmp / "ref2", checkpoints=["densenet/seed0"], log=lambda *_: None)
    assert not (tmp / "ref2").exists()


def test_check_checkpoint_names_a_bad_split(published):
    tmp, _ = published
    with pytest.raises(ValueError, match="split: 'train'"):
        reference.check_checkpoint(tmp / "ref" / "table1" / "densenet" / "seed0", split="train")


# The checkpoints committed in data/reference/ (README: Reference results): each gives,
# reloaded with weights_only, the accuracy stored beside it, on the test images of the
# CIFAR-10 sample in git (in CI) and on the full test set (where the full copy is at hand).
STORED = sorted((reference.REFERENCE_DIR).glob("*/*/seed*/model.pt"))


@pytest.mark.parametrize("ck", STORED, ids=[str(p.parent.relative_to(reference.REFERENCE_DIR)) for p in STORED])
def test_a_stored_checkpoint_gives_its_stored_accuracy_on_the_sample(ck, one_torch_thread):
    r = reference.check_checkpoint(ck.parent, split="sample")
    assert r["images"] == 2000 and r["stored"] is not None and r["measured"] == r["stored"]


@needs_full_cifar10
@pytest.mark.parametrize("ck", STORED, ids=[str(p.parent.relative_to(reference.REFERENCE_DIR)) for p in STORED])
def test_a_stored_checkpoint_gives_its_stored_test_accuracy(ck, one_torch_thread):
    r = reference.check_checkpoint(ck.parent)
    assert r["images"] == 10_000 and r["measured"] == r["stored"]
