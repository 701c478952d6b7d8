"""The prose-number check (course_utils.sources): what it counts, what backs a number, and
that a stale number fails. The check itself runs on every executed notebook in
tests/test_notebooks.py (the Fashion-MNIST smoke runs)."""

import nbformat
import pytest

from course_utils import sources


def nb_with(markdown, printed=""):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(markdown)]
    code = nbformat.v4.new_code_cell("print(...)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells.append(code)
    return nb


def values(markdown):
    return [n.value for n in sources.numbers(markdown)]


def test_what_counts_as_a_number():
    text = ("A 3x3 kernel, 64 channels, lr 0.1, momentum 0.9 and section 3.2 do not count; "
            "nor does DenseNet-121, CIFAR-100, res2net50, Table 3 or the year 2017. "
            "Counted: 71.91%, 36,928 parameters, 0.25, 1.5, 8.36 G MACs, 0.8M, 64x fewer, 100 epochs.")
    assert values(text) == ["71.91", "36928", "0.25", "1.5", "8.36", "0.8", "64", "100"]


def test_code_math_links_and_commands_are_not_prose():
    text = ("The count `36928`, the formula $L(L+1)/2 = 5050$ and [the repo](https://x.org/v/2017.12) "
            "are not prose.\n\n    python -m course_utils.ablate --epochs 300\n")
    assert values(text) == []


def test_a_stale_number_fails_and_a_printed_one_passes():
    assert sources.unbacked(nb_with("The layer has 36,928 parameters.", "params: 36928\n")) == []
    stale = sources.unbacked(nb_with("The layer has 36,928 parameters.", "params: 36864\n"))
    assert [n.text for n in stale] == ["36,928"]
    # a prefix or suffix of a printed number is not that number
    assert sources.unbacked(nb_with("It reaches 71.9%.", "acc 71.91\n"))
    assert sources.unbacked(nb_with("About 928 of them.", "36928\n"))
    # a ratio needs a printed ratio: "64" alone (a channel count) does not back "64x"
    assert sources.unbacked(nb_with("It is 64x cheaper.", "channels: 64\n"))
    assert sources.unbacked(nb_with("It is 64x cheaper.", "ratio: 64.0x\n")) == []


def test_a_citation_backs_its_own_sentence_only():
    md = "The report's DenseNet reaches 71.91% [report, Table 1]. Ours reaches 38.75%."
    assert [n.text for n in sources.unbacked(nb_with(md))] == ["38.75%"]


def test_a_table_or_quote_is_cited_by_its_caption():
    md = ("Its DenseNet-BC rows [DenseNet, Table 2]:\n\n| k | Params | C10 |\n|---|---|---|\n"
          "| 12 | 0.8M | 5.92 |\n\nAnd ours:\n\n| k | Params |\n|---|---|\n| 12 | 0.77M |\n\n"
          "In its words:\n\n> a 5.83% relative increase\n")
    assert sorted(n.text for n in sources.unbacked(nb_with(md))) == ["0.77M", "5.83%"]


def test_unknown_citation_keys_are_reported():
    nb = nb_with("It is 22,855,952 [Xeption, Table 3]; index [o, i, j] and the report's [8] are fine.")
    unknown = sources.unknown_citations(nb.cells[0].source)
    assert len(unknown) == 1 and unknown[0].startswith("[Xeption, Table 3]")
    problems = sources.report(nb)
    assert any("22,855,952" in p for p in problems)       # an unknown key cites nothing


def test_cli_check(tmp_path, capsys):
    path = tmp_path / "n.ipynb"
    nbformat.write(nb_with("It has 1,234 weights.", "1234\n"), path)
    assert sources.main(["check", str(path)]) == 0
    nbformat.write(nb_with("It has 1,235 weights.", "1234\n"), path)
    assert sources.main(["check", str(path)]) == 1
    assert "1,235" in capsys.readouterr().out
    assert sources.main(["check", str(tmp_path / "missing.ipynb")]) == 2
