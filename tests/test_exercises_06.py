"""Lesson 06's exercises (issue 18): the solutions score full marks, the untouched student
stubs 0, and plausible wrong answers less than full marks, with the partial credit each gets
(deterministic: every case is a fixed number, scored by course_utils.answers.check_answers)."""
from exercise_cases import *  # noqa: F401,F403 (the tests every lesson runs, and its helpers)
from exercise_cases import edit, lesson_path, solution_sources

LESSON = lesson_path("06_dense2net")
SOL = solution_sources(LESSON)


def _strip(src):
    """The instructor's answer without the nbgrader markers."""
    return "\n".join(ln for ln in src.splitlines() if "### BEGIN SOLUTION" not in ln
                     and "### END SOLUTION" not in ln) + "\n"


def _edit(gid, old, new):
    src = _strip(SOL[gid])
    assert old in src, (gid, old)
    return src.replace(old, new)


BUILT_PARAMS = (
    "from course_utils import layers, profile\n\n"
    "def _layer(c, k, scale, groups, se):\n"
    "    return layers.DenseLayer(c, k, conv2_layer=lambda i, o: layers.Res2NetModule(\n"
    "        i, o, scale=scale, groups=groups, fusion_norm=False, attn_layer='se' if se else None))\n\n"
    "def dense2net_layer_params(c, k, scale=4, groups=1, se=False):\n"
    "    with torch.device('meta'):\n"
    "        return profile.count_params(_layer(c, k, scale, groups, se))\n\n"
    "def dense2net_block_params(num_layers, c0, k, scale=4, groups=1, se=False):\n"
    "    return sum(dense2net_layer_params(c0 + i * k, k, scale, groups, se) for i in range(num_layers))\n")

# Plausible wrong answers: (key, what is wrong, answer source, the score it gets: each case an
# equal share of the points)
WRONG = {
    "ex1_d2n_params": [
        ("hidden", "SE's hidden width k // 16 without the floor of 1",
         _edit("ex1_d2n_params", "max(1, k // 16)", "k // 16"), 2.625),
        ("se_bias", "SE's two 1x1 convolutions without biases",
         _edit("ex1_d2n_params", "k * hidden + hidden + hidden * k + k", "2 * k * hidden"), 0.9375),
        ("groups", "the groups ignored (every K_i a full 3x3 convolution)",
         _edit("ex1_d2n_params", "9 * w * w // groups", "9 * w * w"), 1.125),
        ("scale1", "s - 1 convolutions at s = 1 too (none)",
         _edit("ex1_d2n_params", "max(1, scale - 1)", "(scale - 1)"), 2.625),
        ("block", "every layer of the block reading c0 channels (the block's growth forgotten)",
         _edit("ex1_d2n_params", "dense2net_layer_params(c0 + i * k,", "dense2net_layer_params(c0,"), 2.0625),
        ("built", "the layers built (on the meta device) and counted", BUILT_PARAMS, 0.0),
    ],
    "ex2_se_layer": [
        ("kit", "SE always where the kit puts it (after the fusion), whatever se_at says",
         _edit("ex2_se_layer", 'attn_layer="se" if se_at == "fusion" else None',
               'attn_layer=None if se_at is None else "se"')
         .replace('        if se_at in ("input", "bottleneck"):\n', '        if False:\n')
         .replace('        if self.se_at == "input":\n', '        if False:\n')
         .replace('        if self.se_at == "bottleneck":\n', '        if False:\n'), 1.4286),
        ("before_relu", "SE at the bottleneck before the ReLU, right after norm2",
         _edit("ex2_se_layer",
               "        x = self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x)))))\n"
               "        if self.se_at == \"bottleneck\":\n            x = self.se(x)\n",
               "        x = self.norm2(self.conv1(self.relu1(self.norm1(x))))\n"
               "        if self.se_at == \"bottleneck\":\n            x = self.se(x)\n"
               "        x = self.relu2(x)\n"), 3.1429),
        ("fusion_norm", "the module with its default BatchNorm after the fusion (fusion_norm=True)",
         _edit("ex2_se_layer", "fusion_norm=False", "fusion_norm=True"), 0.0),
        ("input_late", "SE 'at the input' placed after norm1 and its ReLU",
         _edit("ex2_se_layer",
               "        if self.se_at == \"input\":\n            x = self.se(x)\n"
               "        x = self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x)))))\n",
               "        x = self.relu1(self.norm1(x))\n"
               "        if self.se_at == \"input\":\n            x = self.se(x)\n"
               "        x = self.relu2(self.norm2(self.conv1(x)))\n"), 3.4286),
    ],
    "ex3_widest": [
        ("strict", "a budget that must not be reached (< instead of <=)",
         _edit("ex3_widest", "while params(k) <= budget:", "while params(k) < budget:"), 2.7857),
        ("any_k", "every k accepted, whether the module can split it or not",
         _edit("ex3_widest", "step = scale * groups // math.gcd(scale * groups, 4)", "step = 1"), 1.5),
        ("no_se", "SE's parameters forgotten",
         _edit("ex3_widest", "        if se:\n", "        if False:\n"), 2.3571),
        ("over", "the first k over the budget returned (one step too far)",
         _edit("ex3_widest", "best, k = k, k + step", "k = k + step\n        best = k"), 0.2143),
        ("built", "the layers built (on the meta device) and counted, k by k",
         "import torch\nfrom course_utils import layers, profile\n\n"
         "def widest_growth_rate(c, budget, scale=4, groups=1, se=False):\n"
         "    best, k = None, 1\n"
         "    while True:\n"
         "        if (4 * k) % (scale * groups) == 0:\n"
         "            with torch.device('meta'):\n"
         "                n = profile.count_params(layers.DenseLayer(c, k, conv2_layer=lambda i, o: layers.Res2NetModule(\n"
         "                    i, o, scale=scale, groups=groups, fusion_norm=False, attn_layer='se' if se else None)))\n"
         "            if n > budget:\n"
         "                return best\n"
         "            best = k\n"
         "        k += 1\n", 0.0),
    ],
}


def test_a_module_built_instead_of_a_formula_is_refused(scored):
    assert any(k == "built" for _, k in scored["wrong"]), "no such wrong answer kept"
    for (exercise, key), r in scored["wrong"].items():
        if key == "built":      # "from a formula" is enforced: building a module is switched off
            assert r.reason.startswith(
                "Forbidden: constructing a torch.nn module is switched off"), r
