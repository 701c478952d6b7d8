"""Lesson 03's graded exercises: the solutions score full marks, the untouched student stubs
0, and plausible wrong answers less than full marks, each with the score it gets (the checks
are deterministic: constant cases, no timing but the 5 s limit per case)."""
from exercise_cases import *  # noqa: F401,F403 (the tests every lesson runs, and its helpers)
from exercise_cases import edit, lesson_path, solution_sources

LESSON = lesson_path("03_inception_spectrum")

_UNEVEN = ("def uneven_segmented_params(c_in, c, segments, k=3, bias=False):\n"
           "    q, r = divmod(c, segments)\n"
           "    return c_in * c + (r * (q + 1) ** 2 + (segments - r) * q * q) * k * k + {BIAS}\n")
_MATCHED = ("def matched_module(target, segments, c_in, k=3, tol=0.05):\n"
            "    def params(c):\n"
            "        s = c if segments == 'extreme' else segments\n"
            "        return {COUNT}\n"
            "    step = 1 if segments == 'extreme' else segments\n"
            "    c = step\n"
            "    while params(c) < target:\n"
            "        c += step\n"
            "    best = {BEST}\n"
            "    if {FAR}:\n"
            "        return None\n"
            "    return layers.SegmentedConv(c_in, best, best if segments == 'extreme' else segments, kernel_size=k)\n")
_M = dict(COUNT="c_in * c + c * (c // s) * k * k",
          BEST="min((w for w in (c - step, c) if w >= step), key=lambda w: (abs(params(w) - target), w))",
          FAR="abs(params(best) - target) > tol * target")
_CHOOSE = ("def choose_reduction(c_in, c_out, k, h, w, max_macs):\n"
           "    if {DIRECT}:\n"
           "        return 'direct'\n"
           "    r = max_macs // ({PER_R})\n"
           "    return r if r >= 1 else {NONE}\n")
_C = dict(DIRECT="h * w * c_in * c_out * k * k <= max_macs", PER_R="h * w * (c_in + c_out * k * k)", NONE="None")

# (key, what is wrong, answer source, the score it gets)
WRONG = {
    "ex1_uneven_segments": [
        ("even", "the lesson's even-split formula with c // segments (uneven splits ignored)",
         "def uneven_segmented_params(c_in, c, segments, k=3, bias=False):\n"
         "    return c_in * c + c * (c // segments) * k * k + (2 * c if bias else 0)\n", 1.0909),
        ("ceil", "every segment given the wider size (c // segments rounded up)",
         "def uneven_segmented_params(c_in, c, segments, k=3, bias=False):\n"
         "    q = -(-c // segments)\n"
         "    return c_in * c + segments * q * q * k * k + (2 * c if bias else 0)\n", 1.0909),
        ("bias", "the bias of the k x k convolution only (the 1x1's forgotten)",
         _UNEVEN.replace("{BIAS}", "(c if bias else 0)"), 1.9091),
        ("loop", "a loop over the segments: right, but a billion segments take too long",
         "import torch\n\ndef uneven_segmented_params(c_in, c, segments, k=3, bias=False):\n"
         "    sizes = [c // segments + (i < c % segments) for i in range(segments)]\n"
         "    return c_in * c + sum(a * a for a in sizes) * k * k + (2 * c if bias else 0)\n", 2.7273),
    ],
    "ex2_matched_module": [
        ("first", "the first width whose count reaches the target, not the closest",
         _MATCHED.format(**{**_M, "BEST": "c"}), 3.1429),
        ("no_tol", "the tolerance ignored (never None)",
         _MATCHED.format(**{**_M, "FAR": "False"}), 2.8571),
        ("no_1x1", "the 1x1 convolution left out of the count",
         _MATCHED.format(**{**_M, "COUNT": "c * (c // s) * k * k"}), 1.1429),
    ],
    "ex3_choose_reduction": [
        ("params", "parameters compared with the budget, not MACs (h * w forgotten)",
         _CHOOSE.format(**{**_C, "DIRECT": "c_in * c_out * k * k <= max_macs", "PER_R": "c_in + c_out * k * k"}),
         0.8571),
        ("strict", "the budget read as strict (< where it may be equal)",
         _CHOOSE.format(**{**_C, "DIRECT": "h * w * c_in * c_out * k * k < max_macs"}), 2.7857),
        ("always", "always a reduction (never 'direct')",
         _CHOOSE.format(**{**_C, "DIRECT": "False"}), 2.3571),
        ("only_kxk", "the reduction's own 1x1 convolution left out of the tower's cost",
         _CHOOSE.format(**{**_C, "PER_R": "h * w * c_out * k * k"}), 1.5),
        ("zero", "0 returned where nothing fits (None is asked)",
         _CHOOSE.format(**{**_C, "NONE": "0"}), 2.3571),
    ],
}
