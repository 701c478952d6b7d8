import os
from pathlib import Path

import pytest
import torch

from course_utils import data

# Agg for figures drawn in this process only; the notebook kernels that papermill and nbval
# start must keep their inline backend (with MPLBACKEND=Agg in the environment they draw nothing).
import matplotlib  # noqa: E402

matplotlib.use("Agg")

# papermill's wait on a kernel polled in slices: without it a notebook run could hang for
# ever on a lost wake-up (course_utils/kernelpoll.py); installed in every test process
from course_utils import kernelpoll  # noqa: E402

kernelpoll.install()


def _have(name):
    try:
        data.find_source(name, download=False)
        return True
    except data.DataNotFoundError:
        return False


# Quick and smoke mode train on the CIFAR-10 sample in data/cifar10-sample/ (in git): no
# test of theirs needs anything from outside the repository. Only a test of full mode on
# the whole of CIFAR-10 needs a full copy, which the repository does not carry.
HAVE_FULL_CIFAR10 = _have("cifar10")
HAVE_FMNIST = _have("fashion_mnist")

needs_full_cifar10 = pytest.mark.skipif(
    not HAVE_FULL_CIFAR10, reason="needs all 60,000 CIFAR-10 images, which the repository "
    "does not carry (it embeds a 10,000-image sample): set COURSE_DATA to a folder with "
    "cifar10-jpeg.tar.gz or cifar-10-batches-py")
needs_fmnist = pytest.mark.skipif(
    not HAVE_FMNIST, reason="Fashion-MNIST not found here: apt-get install dataset-fashion-mnist "
    "(make data does this where apt may be used)")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny inputs gain nothing from threads, and on a shared 2-core machine two OpenMP
    threads competing with another job stall badly (seen: 13 s alone, 400 s shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# nbval runs every notebook as committed (make test: `pytest --nbval-lax notebooks`). The
# lessons that train run there in smoke mode, the same cells on the smallest data, so that
# the suite fits its budget; the others, and lesson 00 with another seed (test_notebooks),
# run in quick mode. `make course` runs every lesson in quick mode. COURSE_NBVAL_MODE=quick
# runs them all in quick mode under nbval too.
NBVAL_SMOKE = {"02_depthwise_separable", "03_inception_spectrum", "04_densenet",
               "06_dense2net", "07_table1"}


# make test runs two pytest-xdist workers with `--dist loadfile`: a notebook's nbval cells
# (one kernel) and a test file's tests (module fixtures) stay in one worker, in order. So
# that nbval's runs never write where a test of the default paths reads, nbval's runs of
# the notebooks write their outputs to build/nbval/<notebook>, not to the default
# build/out/<notebook> that test_notebooks.py checks (and `make course` fills).
NBVAL_OUT = Path(__file__).resolve().parents[1] / "build" / "nbval"


def pytest_collection_modifyitems(config, items):
    import re

    smoke = os.environ.get("COURSE_NBVAL_MODE", "smoke") != "quick"
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        stem = Path(str(item.path)).stem
        cell.source = re.sub(r"^out_dir = None\b", f"out_dir = {str(NBVAL_OUT / stem)!r}  # tests/conftest.py",
                             cell.source, count=1, flags=re.M)
        if smoke and stem in NBVAL_SMOKE:
            cell.source = re.sub(r'^mode = "quick"', 'mode = "smoke"  # tests/conftest.py: CI',
                                 cell.source, count=1, flags=re.M)


def processes_with(arg: str) -> list[int]:
    """Ids of the processes whose command line holds `arg` (a marker a test's submission
    gives the processes it starts, to check that none outlived its grading)."""
    from pathlib import Path

    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if arg.encode() in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                pass
    return found
