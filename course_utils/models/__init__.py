"""The model zoo: every network of the two papers (and their relatives), through one registry.

    >>> from course_utils.models import create_model, list_models
    >>> list_models("dense2net*")
    ['dense2net121', 'dense2net_tiny']
    >>> model = create_model("dense2net121", scale=8, num_classes=100)

Every builder accepts ``num_classes`` and ``in_chans`` (1 for Fashion-MNIST). Families:
xception.py (Xception), densenet.py (DenseNet, CIFAR DenseNet-BC, Dense2Net),
res2net.py (Res2Net, Res2NeXt), cnn.py (the fast CPU baseline). Parameter counts and
MACs of all registered models: course_utils/models/README.md.
"""

from ._registry import ModelInfo, create_model, list_models, model_info, register_model
from . import cnn, densenet, res2net, spectrum, xception  # noqa: F401  (importing registers the models)
from .cnn import CifarCNN
from .densenet import DenseNet, dense2net_layer, densenet_bc
from .res2net import Res2Net
from .spectrum import SpectrumNet
from .xception import Xception

__all__ = [
    "ModelInfo",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
    "CifarCNN",
    "DenseNet",
    "Res2Net",
    "SpectrumNet",
    "Xception",
    "dense2net_layer",
    "densenet_bc",
]
