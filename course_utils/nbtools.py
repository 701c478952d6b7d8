"""Keep the committed notebooks clean: outputs only where nbval checks them.

    python -m course_utils.nbtools check   notebooks/*.ipynb   # exit 1 if not clean
    python -m course_utils.nbtools strip   notebooks/*.ipynb   # drop unchecked outputs
    python -m course_utils.nbtools refresh notebooks/00_setup_and_data.ipynb

`refresh` executes the notebook (papermill, default parameters, a temporary out_dir) and
stores the fresh outputs of the cells marked `# NBVAL_CHECK_OUTPUT`; every other cell is
left without outputs and without an execution count.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"
REQUIRED_PARAMETERS = ("mode", "device", "dataset", "data_root", "seed", "out_dir")


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and MARK in cell.source


def problems(nb) -> list[str]:
    """What is wrong with a notebook as committed (empty list: clean)."""
    out = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        if c.outputs and not is_checked(c):
            out.append(f"cell {i} has outputs but is not marked {MARK}")
        if c.execution_count is not None and not is_checked(c):
            out.append(f"cell {i} has an execution count")
    return out


def strip(nb):
    for c in nb.cells:
        if c.cell_type == "code":
            if not is_checked(c):
                c.outputs = []
                c.execution_count = None
            for key in ("execution", "collapsed", "scrolled"):
                c.metadata.pop(key, None)
        c.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    return nb


def refresh(path: Path, kernel_name="python3", executed: Path | None = None) -> None:
    """Store fresh outputs of the checked cells: from `executed` (a copy of this notebook
    already run with default parameters, e.g. by the runbook), or by running it now."""
    import papermill as pm

    from .kernelpoll import install

    install()
    src = nbformat.read(path, as_version=4)
    if executed is not None:
        done = {c.get("id"): c for c in nbformat.read(executed, as_version=4).cells}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / path.name
            pm.execute_notebook(str(path), str(out), parameters={"out_dir": str(Path(tmp) / "o")},
                                kernel_name=kernel_name, cwd=str(path.parent), progress_bar=False)
            done = {c.get("id"): c for c in nbformat.read(out, as_version=4).cells}
    for c in src.cells:
        if is_checked(c):
            c.outputs = done[c.id].outputs
            c.execution_count = done[c.id].execution_count  # nbval skips unrun cells
    nbformat.write(strip(src), path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_utils.nbtools")
    ap.add_argument("command", choices=("check", "strip", "refresh"))
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--from-build", action="store_true",
                    help="refresh: take outputs from build/notebooks/<name> (runbook output)")
    a = ap.parse_args(argv)
    bad = 0
    for p in a.notebooks:
        if a.command == "refresh":
            built = p.resolve().parents[1] / "build" / "notebooks" / p.name
            refresh(p, executed=built if a.from_build else None)
        nb = nbformat.read(p, as_version=4)
        if a.command == "strip":
            nbformat.write(strip(nb), p)
        elif a.command == "check":
            for msg in problems(nb):
                print(f"{p}: {msg}")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
