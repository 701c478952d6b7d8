"""Speed and memory of the model zoo, measured on this machine (prints ratios; not a test).

1. forward + backward time of course_utils' densenet121 against torchvision's, same
   weights, same input, runs interleaved; target ratio (ours / torchvision) <= 1.05.
   The verdict uses the best of N steps of each (the least disturbed by other work on a
   shared machine); the ratio of medians and the median of paired ratios are printed too.
2. training-step memory of dense2net121 (CIFAR, 32x32) at batch 64 with and without
   ``memory_efficient=True``; target: at least 35% less. Each configuration runs in a
   fresh subprocess; step memory = peak RSS during one forward + backward minus the
   RSS just before it (and, as a cross-check, the peak bytes of tensors created by the
   step, from course_utils.profile.TensorMemoryTracker).

Usage:
    .venv/bin/python benchmarks/models.py                 # both parts, defaults below
    .venv/bin/python benchmarks/models.py --part speed --batch 8 --size 224 --repeats 11
    .venv/bin/python benchmarks/models.py --part memory --mem-batch 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _step(model: torch.nn.Module, x: torch.Tensor) -> None:
    out = model(x)
    out.sum().backward()


def bench_speed(batch: int, size: int, repeats: int, warmup: int) -> dict:
    import torchvision

    from course_utils.models import create_model

    torch.manual_seed(0)
    theirs = torchvision.models.densenet121(weights=None)
    ours = create_model("densenet121")
    ours.load_state_dict(theirs.state_dict())  # identical weights, no key mapping
    ours.train()
    theirs.train()
    x = torch.randn(batch, 3, size, size)
    times = {"ours": [], "torchvision": []}
    models = {"ours": ours, "torchvision": theirs}
    for _ in range(warmup):
        for m in models.values():
            _step(m, x)
            m.zero_grad(set_to_none=True)
    for i in range(repeats):
        order = ["ours", "torchvision"] if i % 2 == 0 else ["torchvision", "ours"]
        for name in order:
            m = models[name]
            m.zero_grad(set_to_none=True)
            start = time.perf_counter()
            _step(m, x)
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    paired = [a / b for a, b in zip(times["ours"], times["torchvision"])]
    return {
        "input": [batch, 3, size, size],
        "repeats": repeats,
        "ours_s": best["ours"],
        "torchvision_s": best["torchvision"],
        "ratio": best["ours"] / best["torchvision"],  # best of N: least disturbed by other load
        "median_ratio": med["ours"] / med["torchvision"],
        "paired_median_ratio": statistics.median(paired),
        "all_ours_s": times["ours"],
        "all_torchvision_s": times["torchvision"],
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_child(memory_efficient: bool, batch: int, size: int) -> dict:
    """Runs in a fresh process: one training step, peak RSS above the pre-step RSS."""
    from course_utils.models import create_model
    from course_utils.profile import TensorMemoryTracker

    torch.manual_seed(0)
    model = create_model("dense2net121", memory_efficient=memory_efficient).train()
    x = torch.randn(batch, 3, size, size)
    base = _rss_bytes()
    start = time.perf_counter()
    _step(model, x)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    _step(model, x)  # a second step: its time is free of first-touch page faults
    seconds_warm = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    with TensorMemoryTracker() as tracker:
        _step(model, x)
    return {
        "memory_efficient": memory_efficient,
        "rss_before_mib": base / 2**20,
        "rss_peak_mib": peak / 2**20,
        "step_rss_mib": (peak - base) / 2**20,
        "step_tensor_peak_mib": tracker.peak / 2**20,
        "first_step_seconds": seconds,
        "step_seconds": seconds_warm,
    }


def bench_memory(batch: int, size: int) -> dict:
    res = {}
    for eff in (False, True):
        cmd = [sys.executable, os.path.abspath(__file__), "--child-memory", str(int(eff)),
               "--mem-batch", str(batch), "--mem-size", str(size), "--threads", str(torch.get_num_threads())]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        res[eff] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, eff = res[False], res[True]
    return {
        "input": [batch, 3, size, size],
        "plain": plain,
        "efficient": eff,
        "rss_saving": 1 - eff["step_rss_mib"] / plain["step_rss_mib"],
        "tensor_saving": 1 - eff["step_tensor_peak_mib"] / plain["step_tensor_peak_mib"],
        "time_ratio": eff["step_seconds"] / plain["step_seconds"],
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["all", "speed", "memory"], default="all")
    ap.add_argument("--batch", type=int, default=8, help="speed: batch size (default 8)")
    ap.add_argument("--size", type=int, default=224, help="speed: image size (default 224)")
    ap.add_argument("--repeats", type=int, default=11, help="speed: timed steps per model (default 11)")
    ap.add_argument("--warmup", type=int, default=2, help="speed: untimed steps per model (default 2)")
    ap.add_argument("--mem-batch", type=int, default=64, help="memory: batch size (default 64)")
    ap.add_argument("--mem-size", type=int, default=32, help="memory: image size (default 32, CIFAR)")
    ap.add_argument("--child-memory", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.child_memory is not None:
        print(json.dumps(_memory_child(bool(args.child_memory), args.mem_batch, args.mem_size)))
        return

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    results = {}
    if args.part in ("all", "speed"):
        r = bench_speed(args.batch, args.size, args.repeats, args.warmup)
        results["speed"] = r
        verdict = "OK" if r["ratio"] <= 1.05 else "ABOVE TARGET"
        print(f"[speed] densenet121 forward+backward, input {tuple(r['input'])}, best of {r['repeats']} interleaved:")
        print(f"        ours {r['ours_s'] * 1000:.0f} ms, torchvision {r['torchvision_s'] * 1000:.0f} ms, "
              f"ratio {r['ratio']:.3f} (target <= 1.05: {verdict})")
        print(f"        ratio of medians {r['median_ratio']:.3f}, median of paired ratios {r['paired_median_ratio']:.3f}")
    if args.part in ("all", "memory"):
        r = bench_memory(args.mem_batch, args.mem_size)
        results["memory"] = r
        p, e = r["plain"], r["efficient"]
        verdict = "OK" if r["rss_saving"] >= 0.35 else "BELOW TARGET"
        print(f"[memory] dense2net121 training step, input {tuple(r['input'])}:")
        print(f"        step RSS: plain {p['step_rss_mib']:.0f} MiB, memory_efficient {e['step_rss_mib']:.0f} MiB, "
              f"saving {r['rss_saving'] * 100:.1f}% (target >= 35%: {verdict})")
        print(f"        tensor peak: plain {p['step_tensor_peak_mib']:.0f} MiB, memory_efficient "
              f"{e['step_tensor_peak_mib']:.0f} MiB, saving {r['tensor_saving'] * 100:.1f}%")
        print(f"        step time (2nd step): plain {p['step_seconds']:.2f} s, memory_efficient "
              f"{e['step_seconds']:.2f} s (x{r['time_ratio']:.2f}); first step {p['first_step_seconds']:.2f} s "
              f"vs {e['first_step_seconds']:.2f} s")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
