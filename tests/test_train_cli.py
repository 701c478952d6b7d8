"""`python -m course_utils.train` as a process: bad values rejected by name, a real SIGKILL
then --resume equals the uninterrupted run, a kill in the middle of a checkpoint save
leaves the previous checkpoint loadable, and DDP (2 processes, gloo) equals one process
with the same global batch. Synthetic data (no files), tiny models, one thread each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from course_utils.train import load_checkpoint, main, read_metrics

REPO = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "train_seconds", "images_per_s")
ENV = dict(os.environ, OMP_NUM_THREADS="1", COURSE_PROGRESS="0",
           PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))

# the run every kill test is compared with: cifar_cnn on 320 synthetic images, batch 64
# (5 steps per epoch), 4 epochs, LR x0.1 after epoch 2, augmentation on
RUN_ARGS = ["--model", "cifar_cnn", "--dataset", "synthetic", "--mode", "smoke",
            "--epochs", "4", "--batch-size", "64", "--lr", "0.05", "--schedule", "step",
            "--milestones", "2", "--threads", "1", "--device", "cpu", "--no-progress"]

CHILD = textwrap.dedent('''
    import os, signal, sys, time
    import course_utils.files as files
    import course_utils.train as T
    from course_utils.callbacks import Callback

    how, argv = sys.argv[1], sys.argv[2:]

    class Slow(Callback):  # only slows epochs 3-4 down so that a kill lands inside them
        def on_step_end(self, epoch, step, steps, loss):
            if how == "slow" and epoch >= 3:
                time.sleep(0.15)

    if how == "kill_in_save":  # SIGKILL itself half-way through writing checkpoint #2
        original, saves = files._write_chunks, []
        def write(f, data, chunk=1 << 20):
            if "checkpoint.pt" in f.name:
                saves.append(1)
                if len(saves) == 2:
                    f.write(data[: len(data) // 2]); f.flush(); os.fsync(f.fileno())
                    os.kill(os.getpid(), signal.SIGKILL)
            original(f, data, chunk)
        files._write_chunks = write

    sys.exit(T.main(argv, callbacks=[Slow()]))
''')


def child(tmp: Path, how: str, out: Path, *extra, wait=True):
    script = tmp / "child.py"
    script.write_text(CHILD)
    cmd = [sys.executable, str(script), how, *RUN_ARGS, "--out", str(out), *extra]
    if not wait:
        return subprocess.Popen(cmd, env=ENV, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    return subprocess.run(cmd, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)


def weights(out: Path) -> dict:
    return load_checkpoint(out / "checkpoint.pt")["model"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def no_timing(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    r = child(tmp, "plain", tmp / "run")
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "run"


# --------------------------------------------------------------------- bad values
@pytest.mark.parametrize("args,option,value", [
    (["--model", "densenet_typo"], "--model", "densenet_typo"),
    (["--dataset", "cifar1000"], "--dataset", "cifar1000"),
    (["--scale", "0"], "--scale", "0"),
    (["--groups", "0"], "--groups", "0"),
    (["--lr", "-0.1"], "--lr", "-0.1"),
    (["--epochs", "0"], "--epochs", "0"),
    (["--batch-size", "0"], "--batch-size", "0"),
    (["--schedule", "exponential"], "--schedule", "exponential"),
    (["--mode", "huge"], "--mode", "huge"),
    (["--momentum", "1.5"], "--momentum", "1.5"),
    (["--device", "tpu"], "--device", "tpu"),
    (["--amp", "fp8"], "--amp", "fp8"),
    (["--preset", "paper"], "--preset", "paper"),
    (["--model", "dense2net_tiny", "--scale", "5"], "--scale", "5"),
    (["--model", "densenet_tiny", "--scale", "2"], "--scale", "2"),
    (["--resume"], "--resume", "True"),
])
def test_bad_values_exit_2_naming_the_option(args, option, value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--dataset", "synthetic", "--epochs", "1", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and value in err, err
    assert "allowed" in err or "does not take" in err, err


def test_bad_value_from_the_shell(tmp_path):
    r = subprocess.run([sys.executable, "-m", "course_utils.train", "--scale", "0"], env=ENV,
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "argument --scale: scale=0 is not allowed" in r.stderr
    r = subprocess.run([sys.executable, "-m", "course_utils.train", "--epochs", "ten"], env=ENV,
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--epochs" in r.stderr and "ten" in r.stderr


def test_missing_dataset_exits_1_and_says_where_it_looked(tmp_path, capsys):
    rc = main(["--dataset", "cifar100", "--data-root", str(tmp_path), "--model", "cifar_cnn",
               "--epochs", "1", "--mode", "smoke"])
    err = capsys.readouterr().err
    assert rc == 1 and "cifar100" in err and str(tmp_path) in err


# --------------------------------------------------------------------- kill + resume
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, reference):
    out = tmp_path / "run"
    p = child(tmp_path, "slow", out, wait=False)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if (out / "metrics.jsonl").exists() and len(read_metrics(out)) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # now inside epoch 3 (slowed down): a real kill mid-epoch
    assert p.poll() is None, "the run ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(out / "checkpoint.pt")["epoch"]
    assert 2 <= killed_at < 4
    r = child(tmp_path, "plain", out, "--resume")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"resuming {out / 'checkpoint.pt'} after epoch {killed_at}" in r.stdout
    assert same_weights(weights(out), weights(reference))  # bit-exact on the CPU
    assert no_timing(read_metrics(out)) == no_timing(read_metrics(reference))
    ref_sum = json.loads((reference / "summary.json").read_text())
    assert json.loads((out / "summary.json").read_text())["test_acc"] == ref_sum["test_acc"]


def test_kill_during_checkpoint_save_keeps_the_previous_one(tmp_path, reference):
    out = tmp_path / "run"
    r = child(tmp_path, "kill_in_save", out)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    partial = list(out.glob(".checkpoint.pt.*.tmp"))
    assert partial, "the killed save should have left its half-written temp file"
    ck = load_checkpoint(out / "checkpoint.pt")  # the previous one, whole
    assert ck["epoch"] == 1 and len(read_metrics(out)) == 1
    r = child(tmp_path, "plain", out, "--resume")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not list(out.glob(".*.tmp"))
    assert same_weights(weights(out), weights(reference))


# ------------------------------------------------------------------------------ DDP
DDP_SCRIPT = textwrap.dedent('''
    import sys, torch
    from torch import nn
    import torch.distributed as dist
    from course_utils.data import synthetic_bundle
    from course_utils.train import TrainConfig, fit, init_distributed

    torch.set_num_threads(1)
    info = init_distributed("cpu")
    out, batch_per_process = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    # GroupNorm, not BatchNorm: BN statistics per process would differ from one big batch
    # (on CUDA the engine converts BN to SyncBatchNorm, which gloo on the CPU cannot run)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
                          nn.MaxPool2d(4), nn.Conv2d(8, 16, 3, padding=1), nn.GroupNorm(2, 16),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    data = synthetic_bundle(n_train=256, n_val=64, n_test=64, batch_size=batch_per_process,
                            rank=info.rank, world_size=info.world_size)
    # fp32: the equality below is a float32 property (bf16 autocast, the CPU default where
    # the CPU has bf16 instructions, rounds each half-batch's activations differently)
    fit(model, data, TrainConfig(epochs=2, lr=0.1, schedule="cosine", device="cpu", threads=1,
                                 amp="off", progress=False, verbose=False, out=out, batch_size=32))
    if dist.is_initialized():
        dist.destroy_process_group()
''')


def test_ddp_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), "32"],
                            env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", str(script), str(tmp_path / "two"), "16"],
                         env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    # Tolerance: the gradient all-reduce sums in another order than one big batch, so
    # float32 rounding differs (~1e-7 per step); after 16 steps we allow 1e-5.
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    h1, h2 = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    for r1, r2 in zip(h1, h2):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert r2[key] == pytest.approx(r1[key], rel=1e-4, abs=1e-5), key
    s = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s["device"]["world_size"] == 2 and s["config"]["batch_size"] == 32


def test_resume_onto_a_truncated_checkpoint_names_it_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN_ARGS, "--epochs", "1", "--out", str(out)]) == 0
    ckpt = out / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:2000])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([*RUN_ARGS, "--epochs", "2", "--out", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert str(ckpt) in err and "truncated or corrupt" in err and "--overwrite" in err
    assert "PytorchStreamReader" not in err.split("(")[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_training_prints_no_requires_grad_warning(tmp_path):
    args = [a for a in RUN_ARGS if a != "--no-progress"]  # the warning came from the bar
    r = subprocess.run([sys.executable, "-W", "always", "-m", "course_utils.train", *args,
                        "--epochs", "1", "--out", str(tmp_path / "w")],
                       env={**ENV, "COURSE_PROGRESS": "1"}, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "requires_grad=True to a scalar" not in r.stderr + r.stdout
