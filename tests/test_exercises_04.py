"""Lesson 04's graded exercises: the solutions score full marks, the untouched student
stubs 0, and plausible wrong answers less than full marks (exact partial scores)."""
from exercise_cases import *  # noqa: F401,F403 (the tests every lesson runs, and its helpers)
from exercise_cases import edit, lesson_path, solution_sources

LESSON = lesson_path("04_densenet")
_SOL = solution_sources(LESSON)
_PARAMS, _DEEPEST, _WINDOW = _SOL["ex1_densenet_params"], _SOL["ex2_deepest_block"], _SOL["ex3_window_block"]


_sub = edit


WRONG = {
    "ex1_densenet_params": [
        ("transition_bn", "the transition's BN left out",
         _sub(_PARAMS, "total += 2 * c + c * out", "total += c * out"), 0.4286),
        ("bottleneck_bn", "the bottleneck's second BN left out",
         _sub(_PARAMS, "c * m + 2 * m + 9 * m * k", "c * m + 9 * m * k"), 0.8571),
        ("round", "the compressed width rounded instead of floored",
         _sub(_PARAMS, "out = int(theta * c)", "out = round(theta * c)"), 2.1429),
        ("built", "the network built on the meta device and counted",
         "from course_utils.models.densenet import DenseNet\n\n"
         "def densenet_params(blocks, k, stem, bn_size=4, theta=0.5, num_classes=10, in_chans=3):\n"
         "    with torch.device('meta'):\n"
         "        return profile.count_params(DenseNet(growth_rate=k, block_config=blocks, num_init_features=stem,\n"
         "            bn_size=bn_size, compression=theta, num_classes=num_classes, in_chans=in_chans, stem='cifar'))\n",
         0.0),
    ],
    "ex2_deepest_block": [
        ("no_output", "the block's output not counted (only the layers' inputs)",
         _sub(_DEEPEST, "((n + 1) * k0 + k * n * (n + 1) // 2)", "(n * k0 + k * n * (n - 1) // 2)"), 1.0),
        ("largest_input", "preallocated: the largest layer input counted instead of the output's width",
         _sub(_DEEPEST, "per_channel * (k0 + n * k)", "per_channel * (k0 + max(n - 1, 0) * k)"), 2.0),
        ("sqrt", "deepest_block from the quadratic's root in floating point",
         _sub(_DEEPEST, "    def fits(n):", "    import math\n    per = 4 * batch * height * width\n"
              "    if shared:\n        return int((budget / per - k0) // k)\n"
              "    a, b, c = k / 2, k0 + k / 2, k0 - budget / per\n"
              "    return int((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a))\n    def fits(n):"), 2.8333),
        ("strict", "deepest_block stops one short when the budget is met exactly (< for <=)",
         _sub(_DEEPEST, "<= budget", "< budget"), 2.8333),
    ],
    "ex3_window_block": [
        ("newest_first", "the feature maps concatenated newest first",
         _sub(_WINDOW, "torch.cat(read, dim=1)", "torch.cat(read[::-1], dim=1)"), 0.5714),
        ("input_always", "the block input always read, the window filled with the latest maps",
         _sub(_WINDOW, "features[-window:]", "features[:1] + features[1:][len(features) - window:]"), 1.7143),
        ("window_plus_one", "one map too many in the window (off by one)",
         _sub(_WINDOW, "features[-window:]", "features[-window - 1:]"), 1.7143),
        ("new_only", "only the new maps returned, x_0 left out",
         _sub(_WINDOW, "torch.cat(features, dim=1)", "torch.cat(features[1:], dim=1)"), 0.0),
    ],
}


def test_a_model_built_instead_of_a_formula_is_refused(scored):
    assert any(k == "built" for _, k in scored["wrong"]), "no such wrong answer kept"
    for (exercise, key), r in scored["wrong"].items():
        if key == "built":
            assert r.reason.startswith("Forbidden: constructing a torch.nn module"), r
