"""Training speed (images/s) of the report's models and the CPU lesson models (not a test).

Every number is one training step (forward, loss, backward, SGD step) as fit() runs it,
timed in a fresh subprocess after warm-up steps; the median step is reported. The
device is printed with every line. Parts:

1. speed: dense2net121 and densenet121_cifar (the report's pair) plus the small CPU
   models (cifar_cnn, densenet_bc_40_12, densenet_tiny, dense2net_tiny), with the
   memory format NCHW vs channels_last. On a CUDA machine also bf16 autocast.
2. threads: where the CPU time goes when the machine is shared - 1 vs 2 threads, with
   OpenMP's idle threads spinning (OMP_WAIT_POLICY=ACTIVE; libgomp's default also spins
   for a while) or sleeping (PASSIVE, what `python -m course_utils.train` sets), each
   measured alone and next to a busy-loop process that holds one core.
3. compile (--compile): torch.compile vs eager on the CPU for one small model.
4. profile (--profile): the operators that take the time in one model's step.
5. precision (--part precision): the CPU lesson models at batch 128, NCHW fp32 /
   channels_last fp32 (the engine's CPU default before bf16) / channels_last bf16
   autocast, interleaved in rounds so that a change of load hits all three alike;
   prints each setting's median over the rounds and its ratio to channels_last fp32.

Usage:
    .venv/bin/python benchmarks/train.py                     # parts 1 and 2, CPU (and GPU)
    .venv/bin/python benchmarks/train.py --part speed --steps 3 --batch 32
    .venv/bin/python benchmarks/train.py --part compile --compile-model densenet_bc_40_12
    .venv/bin/python benchmarks/train.py --part profile --profile-model densenet_bc_40_12
    .venv/bin/python benchmarks/train.py --part precision --threads 1 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STEP_CODE = r"""
import json, sys, time, platform
import torch
from course_utils.models import create_model

a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
dev = torch.device(a["device"])
torch.manual_seed(0)
m = create_model(a["model"], num_classes=a["classes"]).to(dev)
x = torch.randn(a["batch"], 3, 32, 32, device=dev)
y = torch.randint(0, a["classes"], (a["batch"],), device=dev)
if a["channels_last"]:
    m = m.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
step_model = torch.compile(m) if a["compile"] else m
amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a["amp"])

def step():
    with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
        loss = torch.nn.functional.cross_entropy(step_model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()

t = time.perf_counter()
for _ in range(a["warmup"]):
    step()
sync()
warm = time.perf_counter() - t
times = []
for _ in range(a["steps"]):
    t = time.perf_counter()
    step()
    sync()
    times.append(time.perf_counter() - t)
times.sort()
med = times[len(times) // 2]
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or platform.machine())
print(json.dumps({"images_per_s": a["batch"] / med, "step_ms": 1000 * med,
                  "warmup_s": warm, "device": f"{dev.type} ({name})",
                  "threads": torch.get_num_threads()}))
"""

PROFILE_CODE = r"""
import json, sys, torch
from torch.profiler import profile, ProfilerActivity
from course_utils.models import create_model
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
torch.manual_seed(0)
m = create_model(a["model"], num_classes=10).to(memory_format=torch.channels_last)
x = torch.randn(a["batch"], 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (a["batch"],))
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
def step():
    loss = torch.nn.functional.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step()
step(); step()
with profile(activities=[ProfilerActivity.CPU]) as p:
    step(); step()
rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)
total = sum(e.self_cpu_time_total for e in rows)
print(json.dumps([{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count}
                  for e in rows[:10]]))
"""


def measure(model, *, device="cpu", threads=2, batch=32, steps=3, warmup=2, channels_last=True,
            compile=False, amp="off", wait_policy="PASSIVE", classes=None, timeout=900):
    args = dict(model=model, device=device, threads=threads, batch=batch, steps=steps,
                warmup=warmup, channels_last=channels_last, compile=compile, amp=amp,
                classes=classes or (100 if model in ("dense2net121", "densenet121_cifar") else 10))
    env = dict(os.environ, OMP_WAIT_POLICY=wait_policy, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-c", STEP_CODE, json.dumps(args)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _line(label, res):
    if "error" in res:
        return f"{label:<66} FAILED: {res['error']}"
    return (f"{label:<66} {res['images_per_s']:8.1f} img/s  ({res['step_ms']:.0f} ms/step, "
            f"{res['device']}, {res['threads']} threads)")


def _loadavg():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def part_speed(a):
    import torch

    print(f"== 1. training images/s (batch {a.batch}; load average {_loadavg()}) ==")
    models = a.models or ["dense2net121", "densenet121_cifar", "cifar_cnn", "densenet_bc_40_12",
                          "densenet_tiny", "dense2net_tiny"]
    for model in models:
        big = model in ("dense2net121", "densenet121_cifar")
        steps = max(2, a.steps - 1) if big else a.steps
        for cl in (False, True):
            res = measure(model, threads=a.threads, batch=a.batch, steps=steps,
                          warmup=1 if big else 2, channels_last=cl)
            print(_line(f"cpu  {model:<18} {'channels_last' if cl else 'NCHW'}", res), flush=True)
    if torch.cuda.is_available():
        for model in models:
            for amp in ("off", "bf16"):
                res = measure(model, device="cuda", batch=128, steps=20, warmup=5,
                              channels_last=True, amp=amp)
                print(_line(f"cuda {model:<18} channels_last {amp}", res), flush=True)
    else:
        print("(no CUDA GPU here: GPU rows not measured)")


def _start_hog():
    """A busy-loop process: stands in for another user's job on a shared CPU."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def part_threads(a):
    print(f"== 2. threads and OpenMP wait policy (load average {_loadavg()}) ==")
    print("   'shared': measured while one busy-loop process (started here) holds a core")
    for shared in (False, True):
        hog = _start_hog() if shared else None
        try:
            for model in (a.thread_models or ["cifar_cnn", "densenet_bc_40_12"]):
                for threads, policy in ((1, "PASSIVE"), (2, "ACTIVE"), (2, "PASSIVE")):
                    res = measure(model, threads=threads, batch=128, steps=a.steps,
                                  wait_policy=policy)
                    label = (f"cpu  {model:<18} {'shared' if shared else 'alone '} {threads} "
                             f"thread(s), OMP_WAIT_POLICY={policy}")
                    print(_line(label, res), flush=True)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()


def part_compile(a):
    print(f"== 3. torch.compile on the CPU (load average {_loadavg()}) ==")
    for comp in (False, True):
        res = measure(a.compile_model, threads=a.threads, batch=128, steps=a.steps,
                      warmup=3, compile=comp)
        print(_line(f"cpu  {a.compile_model:<18} {'compiled' if comp else 'eager'}", res)
              + (f", warm-up {res['warmup_s']:.0f} s" if "warmup_s" in res else ""), flush=True)


def part_profile(a):
    print(f"== 4. where one training step's time goes: {a.profile_model}, batch 128, "
          f"channels_last, {a.threads} threads ==")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-c", PROFILE_CODE,
                        json.dumps(dict(model=a.profile_model, threads=a.threads, batch=128))],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAILED:", r.stderr.strip().splitlines()[-1:])
        return
    for row in json.loads(r.stdout.strip().splitlines()[-1]):
        print(f"  {row['op']:<40} {100 * row['share']:5.1f}%  ({row['calls']} calls)")


PRECISION_SETTINGS = (("NCHW fp32", False, "off"), ("channels_last fp32", True, "off"),
                      ("channels_last bf16", True, "bf16"))


def part_precision(a):
    import statistics

    models = a.models or ["densenet_tiny", "dense2net_tiny", "cifar_cnn"]
    print(f"== 5. precision on the CPU: batch 128, {a.threads} thread(s), {a.rounds} rounds "
          f"(load average {_loadavg()}) ==")
    for model in models:
        got = {label: [] for label, _, _ in PRECISION_SETTINGS}
        for _ in range(a.rounds):
            for label, cl, amp in PRECISION_SETTINGS:
                res = measure(model, threads=a.threads, batch=128, steps=a.steps, warmup=2,
                              channels_last=cl, amp=amp)
                got[label].append(res.get("images_per_s"))
        ref = statistics.median(got["channels_last fp32"]) if None not in got["channels_last fp32"] else None
        for label, _, _ in PRECISION_SETTINGS:
            xs = got[label]
            if None in xs:
                print(f"cpu  {model:<18} {label:<20} FAILED in a round")
                continue
            med = statistics.median(xs)
            ratio = f"{med / ref:5.2f}x channels_last fp32" if ref else ""
            print(f"cpu  {model:<18} {label:<20} {med:8.1f} img/s (rounds: "
                  f"{', '.join(f'{x:.0f}' for x in xs)})  {ratio}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="training images/s of the course's models")
    ap.add_argument("--part", choices=("speed", "threads", "compile", "profile", "precision",
                                       "all"),
                    default=None, help="default: speed and threads")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--thread-models", nargs="+", default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="precision: interleaved rounds")
    ap.add_argument("--compile-model", default="densenet_bc_40_12")
    ap.add_argument("--profile-model", default="densenet_bc_40_12")
    a = ap.parse_args(argv)
    parts = {"speed": [part_speed], "threads": [part_threads], "compile": [part_compile],
             "profile": [part_profile], "precision": [part_precision],
             "all": [part_speed, part_threads, part_compile, part_profile, part_precision],
             None: [part_speed, part_threads]}[a.part]
    print(f"[bench] {os.cpu_count()} CPUs; each line is a fresh process")
    for p in parts:
        p(a)


if __name__ == "__main__":
    main()
