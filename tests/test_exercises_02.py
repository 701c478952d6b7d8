"""Lesson 02's graded exercises, one answer at a time: the solutions score full marks, the
untouched student stubs 0, and plausible wrong answers less than full (with their exact
partial scores; course_utils.answers.check_answers runs each with its whole check cell)."""
from exercise_cases import *  # noqa: F401,F403 (the tests every lesson runs, and its helpers)
from exercise_cases import edit, lesson_path, solution_sources

LESSON = lesson_path("02_depthwise_separable")
SOLUTION = solution_sources(LESSON)
_COST = SOLUTION["ex1_sep_cost"]
_CONV = SOLUTION["ex2_sep_from_weights"]
_DECIDE = SOLUTION["ex3_decide_relu"]


_edit = edit


# Plausible wrong answers: (key, what is wrong, answer, its score; None: below full marks)
WRONG = {
    "ex1_sep_cost": [
        ("stride_pointwise", "the 1x1 step counted at the output's resolution in both orders",
         _edit(_COST, "size * size * c_in * mid", "out * out * c_in * mid"), 2.1429),
        ("floor", "the output side as size // stride (a floor where the padded layer rounds up)",
         _edit(_COST, "(size - 1) // stride + 1", "size // stride"), 2.3571),
        ("bias", "the biases forgotten", _edit(_COST, "params += mid + c_out", "pass"), 1.9286),
        ("built", "the layer built and counted instead of a formula",
         "from course_utils import layers, profile\n\n"
         "def separable_cost(c_in, c_out, k, size, stride=1, depth_multiplier=1, order='depthwise_first', bias=False):\n"
         "    m = layers.SeparableConv2d(c_in, c_out, k, stride=stride, depth_multiplier=depth_multiplier,\n"
         "                               order=order, bias=bias)\n"
         "    return profile.count_params(m), profile.count_macs(m, (1, c_in, size, size))\n", 0.0),
    ],
    "ex2_sep_from_weights": [
        ("pad_one_side", "F.pad given one pair: only the width padded",
         _edit(_CONV, "(padding, padding, padding, padding)", "(padding, padding)"), 1.6),
        ("dilation", "the dilation ignored", _edit(_CONV, "r, s = i * dilation, j * dilation", "r, s = i, j"), 2.8),
        ("channels", "depthwise channel j reads input channel j % C (repeat, not repeat_interleave)",
         _edit(_CONV, "xp.repeat_interleave(cm // c, dim=1)", "xp.repeat(1, cm // c, 1, 1)"), 3.2),
        ("flipped", "the kernel flipped (a true convolution, not PyTorch's cross-correlation)",
         _edit(_CONV, "w_depthwise[:, 0, i, j]", "w_depthwise[:, 0, k - 1 - i, k - 1 - j]"), 2.0),
        ("conv2d", "torch's convolutions called",
         "import torch.nn.functional as F\n\n"
         "def separable_conv2d(x, w_depthwise, w_pointwise, stride=1, padding=0, dilation=1):\n"
         "    d = F.conv2d(x, w_depthwise, stride=stride, padding=padding, dilation=dilation, groups=x.shape[1])\n"
         "    return F.conv2d(d, w_pointwise)\n", 0.0),
        ("conv2d_alias", "torch's convolution called under a name imported before the check",
         "from torch.nn.functional import conv2d\n\n"
         "def separable_conv2d(x, w_depthwise, w_pointwise, stride=1, padding=0, dilation=1):\n"
         "    d = conv2d(x, w_depthwise, stride=stride, padding=padding, dilation=dilation, groups=x.shape[1])\n"
         "    return conv2d(d, w_pointwise)\n", 0.0),
    ],
    "ex3_decide_relu": [
        ("z", "1.96 (the normal quantile) instead of Student's t",
         _edit(_DECIDE, "T975[n - 1] * s", "1.96 * s"), 1.125),
        ("position", "paired by position in the dicts, not by seed",
         _edit(_DECIDE, "[relu[s] - none[s] for s in none]",
               "[r - b for b, r in zip(none.values(), relu.values())]"), 2.0625),
        ("pstdev", "the standard deviation with n in its denominator",
         _edit(_DECIDE, "/ (n - 1))", "/ n)"), 1.6875),
        ("unpaired", "unpaired: the difference of the means, its error from the two groups' variances (seeds not paired)",
         "import math\nimport statistics\n\n"
         "T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}\n\n"
         "def decide_relu(none, relu):\n"
         "    a, b = list(none.values()), list(relu.values())\n"
         "    n = len(a)\n"
         "    mean = statistics.mean(b) - statistics.mean(a)\n"
         "    half = T975[n - 1] * math.sqrt(statistics.variance(a) / n + statistics.variance(b) / n)\n"
         "    low, high = mean - half, mean + half\n"
         "    return mean, low, high, 'hurts' if high < 0 else 'helps' if low > 0 else 'unresolved'\n", 0.75),
        ("kit", "the kit's paired interval called (course_utils.stats)",
         "def decide_relu(none, relu):\n"
         "    iv = stats.paired_interval(none, relu)\n"
         "    return iv.mean, iv.low, iv.high, 'hurts' if iv.high < 0 else 'helps' if iv.low > 0 else 'unresolved'\n",
         0.0),
        ("kit_alias", "the kit's paired interval imported by name before the check",
         "from course_utils.stats import paired_interval\n\n"
         "def decide_relu(none, relu):\n"
         "    iv = paired_interval(none, relu)\n"
         "    return iv.mean, iv.low, iv.high, 'hurts' if iv.high < 0 else 'helps' if iv.low > 0 else 'unresolved'\n",
         0.0),
    ],
}


REFUSED = [("ex1_sep_cost", "built"), ("ex2_sep_from_weights", "conv2d"), ("ex2_sep_from_weights", "conv2d_alias"),
           ("ex3_decide_relu", "kit"), ("ex3_decide_relu", "kit_alias")]


def test_what_the_exercise_asks_to_compute_cannot_be_called(scored):
    for exercise, key in REFUSED:
        assert scored["wrong"][(exercise, key)].reason.startswith("Forbidden: "), scored["wrong"][(exercise, key)]
