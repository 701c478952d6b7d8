import os

import pytest

from course_utils import data

os.environ.setdefault("MPLBACKEND", "Agg")


def _have(name):
    try:
        data.find_source(name, download=False)
        return True
    except data.DataNotFoundError:
        return False


HAVE_CIFAR10 = _have("cifar10")
HAVE_FMNIST = _have("fashion_mnist")

needs_cifar10 = pytest.mark.skipif(
    not HAVE_CIFAR10, reason="CIFAR-10 not found here: set COURSE_DATA to a folder with "
    "cifar10-jpeg.tar.gz or cifar-10-batches-py (make test does this where ../shared/data exists)")
needs_fmnist = pytest.mark.skipif(
    not HAVE_FMNIST, reason="Fashion-MNIST not found here: apt-get install dataset-fashion-mnist "
    "(make data does this where apt may be used)")
