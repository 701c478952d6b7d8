"""The sources the lessons quote, and the check that every number in their prose is backed.

A number that a notebook's markdown states is either printed by one of its code cells (so
that it changes when the code does, and a stale one fails CI) or quoted from a source,
with a citation in the same sentence, table row or blockquote:

    The report's DenseNet reaches 71.91% [report, Table 1].
    Xception has 22.8M parameters [Xception, Table 3].

A citation is `[key]` or `[key, where]` with a key of `SOURCES`; a table or a blockquote
is cited as a whole by a citation in the line just above it (its caption).

What counts as a number: anything with a decimal part of two or more significant digits
(71.91, 0.25, 1.5), a percentage (36%), a count of 100 or more (36,928; 100), a size
with a unit suffix (0.8M, 8.36 G) and a ratio (64x). Not counted: code spans, math
(`$...$`), links' targets, fenced and indented code, small integers (kernel sizes,
section numbers), one-digit hyperparameters such as 0.1 or 0.5, and years.

    python -m course_utils.sources check build/executed/04_densenet.ipynb
    python -m course_utils.sources list
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SOURCES: dict[str, str] = {
    "report": "T. Songkakul and N. Starliper, Dense2Net: A Hybrid Res2Net/DenseNet "
              "Architecture, course report, North Carolina State University",
    "Xception": "F. Chollet, Xception: Deep Learning with Depthwise Separable "
                "Convolutions, CVPR 2017 (arXiv:1610.02357)",
    "DenseNet": "G. Huang, Z. Liu, L. van der Maaten and K. Q. Weinberger, Densely "
                "Connected Convolutional Networks, CVPR 2017 (arXiv:1608.06993)",
    "Res2Net": "S.-H. Gao, M.-M. Cheng, K. Zhao, X.-Y. Zhang, M.-H. Yang and P. Torr, "
               "Res2Net: A New Multi-scale Backbone Architecture, TPAMI 2021 "
               "(arXiv:1904.01169)",
    "InceptionV3": "C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens and Z. Wojna, Rethinking "
                   "the Inception Architecture for Computer Vision, CVPR 2016 "
                   "(arXiv:1512.00567)",
    "GoogLeNet": "C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, "
                 "V. Vanhoucke and A. Rabinovich, Going Deeper with Convolutions, CVPR 2015 "
                 "(arXiv:1409.4842)",
    "ResNet": "K. He, X. Zhang, S. Ren and J. Sun, Deep Residual Learning for Image "
              "Recognition, CVPR 2016 (arXiv:1512.03385)",
    "ResNeXt": "S. Xie, R. Girshick, P. Dollar, Z. Tu and K. He, Aggregated Residual "
               "Transformations for Deep Neural Networks, CVPR 2017 (arXiv:1611.05431)",
    "SE": "J. Hu, L. Shen and G. Sun, Squeeze-and-Excitation Networks, CVPR 2018 "
          "(arXiv:1709.01507)",
    "Cutout": "T. DeVries and G. W. Taylor, Improved Regularization of Convolutional "
              "Neural Networks with Cutout, 2017 (arXiv:1708.04552)",
    "MobileNet": "A. G. Howard et al., MobileNets: Efficient Convolutional Neural Networks "
                 "for Mobile Vision Applications, 2017 (arXiv:1704.04861)",
    "Pleiss": "G. Pleiss, D. Chen, G. Huang, T. Li, L. van der Maaten and K. Q. "
              "Weinberger, Memory-Efficient Implementation of DenseNets, 2017 "
              "(arXiv:1707.06990)",
    "CIFAR": "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, "
             "technical report, University of Toronto, 2009",
    "Fashion-MNIST": "H. Xiao, K. Rasul and R. Vollgraf, Fashion-MNIST: a Novel Image "
                     "Dataset for Benchmarking Machine Learning Algorithms, 2017 "
                     "(arXiv:1708.07747)",
    "ELU": "D.-A. Clevert, T. Unterthiner and S. Hochreiter, Fast and Accurate Deep "
           "Network Learning by Exponential Linear Units (ELUs), ICLR 2016 "
           "(arXiv:1511.07289)",
    "pytorch-cifar100": "github.com/weiaicunzai/pytorch-cifar100: README (results table) "
                        "and train.py / conf/global_settings.py (recipe)",
    "Res2Net code": "github.com/Res2Net/Res2Net-PretrainedModels (res2net.py, Bottle2neck)",
    "DenseNet code": "github.com/liuzhuang13/DenseNet, the DenseNet authors' Torch code "
                     "(models/densenet.lua)",
    "ChrisMats": "github.com/ChrisMats/Res2Net, the implementation the report cites as [13]",
    "Cutout code": "github.com/uoguelph-mlrg/Cutout (train.py, util/cutout.py), the code of "
                   "the Cutout paper",
    "VGG": "K. Simonyan and A. Zisserman, Very Deep Convolutional Networks for Large-Scale "
           "Image Recognition, ICLR 2015 (arXiv:1409.1556)",
    "ERF": "W. Luo, Y. Li, R. Urtasun and R. Zemel, Understanding the Effective Receptive "
           "Field in Deep Convolutional Neural Networks, NIPS 2016 (arXiv:1701.04128)",
    "pytorch-cifar": "github.com/kuangliu/pytorch-cifar (models/densenet.py; main.py, its "
                     "training script), the DenseNet implementation the report cites as [12]",
    "timm": "github.com/huggingface/pytorch-image-models, timm 1.0.31",
    "torchvision": "torchvision 0.29.1 (models/densenet.py, models/inception.py with the "
                   "Inception_V3_Weights metadata, and the classification references)",
    "data README": "data/README.md of this kit: the JPEG re-encoding of CIFAR-10 and the "
                   "embedded sample",
    "runbook": "a run of `make course` (python -m course_utils.runbook) on the machine and "
               "date that the sentence names: wall times measured outside the notebook",
}

# [key] or [key, where] / [key: where] / [key §3]; not a link ([text](url)).
_KEYS = "|".join(re.escape(k) for k in sorted(SOURCES, key=len, reverse=True))
CITATION = re.compile(r"\[(?:%s)(?:[,:;\s][^\]]*)?\](?!\()" % _KEYS)
_BRACKET = re.compile(r"\[([^\]\[]{1,80})\](?!\()")

# A number: digits with optional thousands separators and decimals, then an optional
# percent sign, unit suffix (K/M/G, B for bytes) or ratio sign.
_NUMBER = re.compile(r"(?<![\w.,\u00b7/^_-])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
                     r"(\s?%|\s?[KMG](?:B|iB)?\b|[x\u00d7](?![\d\w]))?")
_ABBREV = re.compile(r"\b(?:Fig|Figs|Eq|Eqs|Sec|al|e\.g|i\.e|vs|cf|No|approx|resp|ca|"
                     r"p|pp|ch|Ref|Refs|incl)\.$")


@dataclass(frozen=True)
class Number:
    text: str        # as written, e.g. "36,928" or "5.83%"
    value: str       # normalised digits, e.g. "36928" or "5.83"
    cell: int
    context: str     # the sentence, row or block it stands in
    cited: bool


def _strip_markup(text: str) -> str:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)             # link targets
    text = re.sub(r"<[^>\n]+>", " ", text)                # html tags
    text = re.sub(r"(?m)^(?: {4}|\t).*$", " ", text)     # indented code (commands)
    return text


def _sentences(paragraph: str) -> list[str]:
    out, start = [], 0
    for m in re.finditer(r"[.!?:;](?=\s+[A-Z(*\"'\u201c])", paragraph):
        if _ABBREV.search(paragraph[start:m.end()]):
            continue
        out.append(paragraph[start:m.end()])
        start = m.end()
    out.append(paragraph[start:])
    return [s for s in out if s.strip()]


def _units(markdown: str):
    """(text, inherited_citation) pieces: sentences of paragraphs and list items, table rows
    (cited by the caption line above the table), blockquotes (same)."""
    lines = _strip_markup(markdown).split("\n")
    blocks, cur, kind = [], [], None

    def flush():
        nonlocal cur, kind
        if cur:
            blocks.append((kind, cur))
        cur, kind = [], None

    for line in lines:
        s = line.strip()
        k = ("heading" if s.startswith("#") else "table" if s.startswith("|") else "quote" if s.startswith(">")
             else "item" if re.match(r"^(?:[-*+]|\d+\.)\s", s) else "text" if s else None)
        if k is None or k != kind or k in ("item", "heading"):
            flush()
        if k is not None:
            kind = k
            cur.append(s)
    flush()
    previous = ""
    for kind, block in blocks:
        if kind == "table":
            caption = bool(CITATION.search(previous))
            for row in block:
                yield row, caption
        elif kind == "quote":
            yield " ".join(block), bool(CITATION.search(previous))
        else:
            for sentence in _sentences(" ".join(block)):
                yield sentence, False
        previous = block[-1] if kind in ("text", "item", "heading") else ""


_LOCATOR = re.compile(r"(?i)(?:section|sections|§|sec\.|table|tables|fig\.|figs\.|figure|"
                      r"figures|eq\.|eqs\.|equation|lesson|lessons|step|cell|cells|"
                      r"version|v|python|torch)\s*$")


def _counts(m: re.Match) -> bool:
    if _LOCATOR.search(m.string[max(0, m.start() - 12):m.start()]):
        return False                                     # section 3.2, Table 3, torch 2.14
    whole, dec, suffix = m.group(1), m.group(2) or "", (m.group(3) or "").strip()
    if suffix:
        return True
    if dec:
        return len((whole + dec[1:]).lstrip("0")) >= 2 and not re.fullmatch(r"\d0*", (whole + dec[1:]).lstrip("0"))
    n = int(whole.replace(",", ""))
    if "," not in whole and 1900 <= n <= 2100:
        return False                                     # a year
    return n >= 100


def normalise(number: str) -> str:
    return number.replace(",", "")


def numbers(markdown: str, cell: int = 0) -> list[Number]:
    found = []
    for text, inherited in _units(markdown):
        cited = inherited or bool(CITATION.search(text))
        for m in _NUMBER.finditer(text):
            if _counts(m):
                value = normalise(m.group(1) + (m.group(2) or ""))
                found.append(Number(m.group(0).strip(), value, cell, text.strip(), cited))
    return found


def unknown_citations(markdown: str) -> list[str]:
    """Bracketed words that look like a citation but name no key of SOURCES."""
    bad = []
    for m in _BRACKET.finditer(_strip_markup(markdown)):
        inner = m.group(1)
        head = re.split(r"[,:;]", inner, maxsplit=1)[0].strip()
        if CITATION.fullmatch(m.group(0)):
            continue
        # index expressions ([o, i, j], [x_0, ..., x_l]) and the report's own reference
        # numbers inside quotes ([8]) are not citations of ours
        if re.fullmatch(r"[\d\s,\-\u2013]+|\.\.\.|[\w\s,.+\-*/\u2212\u2026_{}()\\]*", inner) \
                and not re.search(r"(?i)\b(?:table|fig|eq|section|§)", inner):
            continue
        bad.append(m.group(0) + f" (key {head!r} is not in course_utils.sources.SOURCES)")
    return bad


def _output_text(nb) -> str:
    parts = []
    for c in nb.cells:
        if c.get("cell_type") != "code":
            continue
        for o in c.get("outputs", []):
            if "text" in o:
                parts.append(o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
            for key in ("text/plain", "text/markdown", "text/html"):
                v = o.get("data", {}).get(key)
                if v:
                    parts.append(v if isinstance(v, str) else "".join(v))
    return normalise("\n".join(parts))


def unbacked(nb) -> list[Number]:
    """Numbers of the notebook's markdown that no output prints and no citation backs."""
    printed = _output_text(nb)
    bad = []
    for i, c in enumerate(nb.cells):
        if c.get("cell_type") != "markdown":
            continue
        for n in numbers(c["source"] if isinstance(c["source"], str) else "".join(c["source"]), i):
            if n.cited:
                continue
            pattern = r"(?<![\d.])%s(?!\d)" % re.escape(n.value)
            if n.text[-1] in "x\u00d7":
                # a ratio is backed only by a printed ratio (64x, 64.0x), not by any 64
                pattern = r"(?<![\d.])%s(?:\.0+)?\s?[x\u00d7](?!\w)" % re.escape(n.value)
            if not re.search(pattern, printed):
                bad.append(n)
    return bad


def report(nb) -> list[str]:
    lines = [f"cell {n.cell}: {n.text!r} is neither printed by a code cell nor cited: "
             f"{n.context[:160]!r}" for n in unbacked(nb)]
    for i, c in enumerate(nb.cells):
        if c.get("cell_type") == "markdown":
            src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            lines += [f"cell {i}: unknown citation {b}" for b in unknown_citations(src)]
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_utils.sources", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="list the unbacked numbers of executed notebooks")
    c.add_argument("notebooks", nargs="+", type=Path)
    sub.add_parser("list", help="the citation keys and what they stand for")
    args = p.parse_args(argv)
    if args.cmd == "list":
        for k, v in SOURCES.items():
            print(f"[{k}]  {v}")
        return 0
    import nbformat
    rc = 0
    for path in args.notebooks:
        if not path.is_file():
            print(f"notebooks: {path} is not a file", file=sys.stderr)
            return 2
        lines = report(nbformat.read(path, as_version=4))
        print(f"{path}: {len(lines)} problem(s)")
        for line in lines:
            print("  " + line)
        rc = rc or (1 if lines else 0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
