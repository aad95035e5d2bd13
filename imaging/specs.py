"""Triton model specs of the image classifiers: three ensembles of three steps each.

For every network in :mod:`imaging.networks`::

    IMAGE (bytes) -> <net>_preprocess (Python) -> <net>_network (ONNX) -> <net>_postprocess (Python)
                                                                   -> CLASS_ID, LABEL, SCORE (top-5)

The ensemble ``<net>`` is what clients call. Instance counts, ONNX Runtime threads and
batching come from measurements on the project's 2-core CPU machine (docs/images.md).
``SKIP_TF=1`` (as for scripts/setup.sh) leaves out the Keras model, which needs ``.venv-tf``.
"""

from __future__ import annotations

import os

from imaging.artifacts import SUBDIR
from imaging.networks import NETWORKS, NUM_CLASSES, TOP_K, Network
from imaging.warmup import WARMUP_FILE
from serving.modelspec import (
    TARGETS,
    DynamicBatching,
    EnsembleStep,
    GpuLocal,
    Instances,
    ModelSpec,
    OrtSettings,
    TensorSpec,
    Warmup,
    WarmupInput,
)

MAX_BATCH_SIZE = 8
# Tensor names, used by the steps, the clients and the load tests.
IMAGE, PIXELS, SCORES = "IMAGE", "PIXELS", "SCORES"
CLASS_ID, LABEL, SCORE = "CLASS_ID", "LABEL", "SCORE"
OUTPUT_NAMES = (CLASS_ID, LABEL, SCORE)
IMAGE_INPUT = TensorSpec(IMAGE, "TYPE_STRING", (1,))
OUTPUTS = (
    TensorSpec(CLASS_ID, "TYPE_INT64", (TOP_K,)),
    TensorSpec(LABEL, "TYPE_STRING", (TOP_K,)),
    TensorSpec(SCORE, "TYPE_FP32", (TOP_K,)),
)

# Measured on the 2-core CPU machine (docs/images.md, "Throughput"): two single-threaded
# network instances beat one two-threaded instance on every load we tried (ONNX Runtime's
# intra-op threads wait on each other when the cores are shared with the Python steps and
# other processes), and decoding is cheap next to the networks, so one instance per Python
# step suffices. On the GPU one instance per network keeps the TensorRT engine busy.
NETWORK_INSTANCES = Instances(cpu=2, gpu=1)
NETWORK_ORT = OrtSettings(intra_op_threads=1, inter_op_threads=1)
PREPROCESS_INSTANCES = Instances(cpu=1, gpu=2)
POSTPROCESS_INSTANCES = Instances(cpu=1, gpu=1)
# Queue policies shed overload (503) instead of queueing it, at the ensemble's first step too,
# so that little CPU goes to images that will be refused. resnet152_pytorch, 64 closed-loop users
# (8x what saturates it) that back off 0.5 s after a 503, 30 s: no policy, p50 6.9 s and p99 7.9 s,
# growing with every added user; these policies, p50 2.6 s and p99 3.4 s for the 7.3 req/s served
# (9.0 at saturation), 75 req/s shed at once; 8 users: nothing shed, p99 1.5 s either way
# (perf/results/2026-11-29/overload-*).
PREPROCESS_BATCHING = DynamicBatching(max_queue_delay_us=500, max_queue_size=8, queue_timeout_us=1_000_000)
NETWORK_BATCHING = DynamicBatching(
    preferred_batch_sizes=(4, 8), max_queue_delay_us=2000, max_queue_size=8, queue_timeout_us=1_000_000
)
STEP_BATCHING = DynamicBatching(max_queue_delay_us=500, max_queue_size=64)

# gpu-local (the local server on a 16-core GPU machine, no container): the network on the GPU
# in half precision, batched up to 64 images; decoding spread over 8 preprocessing instances of
# 2 threads each; queues deep enough for the GPU's rate, bounded in time as on the CPU.
GPU_LOCAL_NETWORK = DynamicBatching(
    preferred_batch_sizes=(32, 64), max_queue_delay_us=2000, max_queue_size=1024, queue_timeout_us=2_000_000
)
GPU_LOCAL_STEP = DynamicBatching(max_queue_delay_us=500, max_queue_size=1024, queue_timeout_us=2_000_000)


def model_names(network: Network) -> tuple[str, str, str]:
    """(preprocess, network, postprocess) model names of one ensemble."""
    return f"{network.name}_preprocess", f"{network.name}_network", f"{network.name}_postprocess"


def specs_for(network: Network) -> list[ModelSpec]:
    pre, net, post = model_names(network)
    provenance = {"provenance.json": f"{SUBDIR}/{network.name}.json"}
    torch = network.torch_module
    targets = TARGETS if torch else tuple(t for t in TARGETS if t != "gpu-local")
    describer = f"{torch}:describe" if torch else None
    local_step = GpuLocal(instances=2, dynamic_batching=GPU_LOCAL_STEP, describer=describer)
    net_input = TensorSpec(network.input_name, "TYPE_FP32", network.input_dims)
    net_output = TensorSpec(network.output_name, "TYPE_FP32", (NUM_CLASSES,))
    preprocess = ModelSpec(
        name=pre,
        kind="python",
        description=f"decode + {network.preprocess.name} preprocessing for {network.name}",
        inputs=(IMAGE_INPUT,),
        outputs=(TensorSpec(PIXELS, "TYPE_FP32", network.input_dims),),
        max_batch_size=MAX_BATCH_SIZE,
        dynamic_batching=PREPROCESS_BATCHING,
        instances=PREPROCESS_INSTANCES,
        python_step="ensembles.steps.imaging:ImagePreprocess",
        parameters={"PREPROCESS": network.preprocess.name, "DECODE_THREADS": "2"},
        gpu_local=GpuLocal(instances=8, dynamic_batching=GPU_LOCAL_STEP),
        targets=targets,
        warmup=(
            Warmup(
                name="jpeg_320x240",
                batch_size=1,
                inputs={IMAGE: WarmupInput("TYPE_STRING", (1,), source="file", file=WARMUP_FILE)},
            ),
        ),
    )
    onnx = ModelSpec(
        name=net,
        kind="onnx",
        description=network.description,
        inputs=(net_input,),
        outputs=(net_output,),
        max_batch_size=MAX_BATCH_SIZE,
        dynamic_batching=NETWORK_BATCHING,
        instances=NETWORK_INSTANCES,
        artifact=f"{SUBDIR}/{network.name}.onnx",
        exporter=network.exporter,
        extra_files=provenance,
        ort=NETWORK_ORT,
        gpu_local=GpuLocal(
            instances=2,
            max_batch_size=64,
            dynamic_batching=GPU_LOCAL_NETWORK,
            torch_builder=f"{torch}:model_from_provenance" if torch else None,
            describer=describer,
        ),
        targets=targets,
        warmup=tuple(
            Warmup(
                name=f"zeros_batch{size}",
                batch_size=size,
                inputs={network.input_name: WarmupInput("TYPE_FP32", network.input_dims, source="zero")},
            )
            for size in (1, MAX_BATCH_SIZE)
        ),
    )
    postprocess = ModelSpec(
        name=post,
        kind="python",
        description=f"top-{TOP_K} with ImageNet names for {network.name}",
        inputs=(TensorSpec(SCORES, "TYPE_FP32", (NUM_CLASSES,)),),
        outputs=OUTPUTS,
        max_batch_size=MAX_BATCH_SIZE,
        dynamic_batching=STEP_BATCHING,
        instances=POSTPROCESS_INSTANCES,
        python_step="ensembles.steps.imaging:ImagePostprocess",
        exporter=network.exporter,  # writes the provenance file this model loads
        extra_files=provenance,
        parameters={
            "APPLY_SOFTMAX": "true" if network.outputs_logits else "false",
            "TOP_K": str(TOP_K),
            "NETWORK": network.name,
        },
        gpu_local=local_step,
        targets=targets,
        warmup=(
            Warmup(
                name="zeros",
                batch_size=1,
                inputs={SCORES: WarmupInput("TYPE_FP32", (NUM_CLASSES,), source="zero")},
            ),
        ),
    )
    ensemble = ModelSpec(
        name=network.name,
        kind="ensemble",
        description=f"image bytes -> top-{TOP_K} ImageNet classes ({network.description})",
        inputs=(IMAGE_INPUT,),
        outputs=OUTPUTS,
        max_batch_size=MAX_BATCH_SIZE,
        targets=targets,
        steps=(
            EnsembleStep(pre, {IMAGE: IMAGE}, {PIXELS: "pixels"}),
            EnsembleStep(net, {network.input_name: "pixels"}, {network.output_name: "scores"}),
            EnsembleStep(post, {SCORES: "scores"}, {name: name for name in OUTPUT_NAMES}),
        ),
    )
    return [preprocess, onnx, postprocess, ensemble]


def enabled_networks() -> list[Network]:
    skip_tf = os.environ.get("SKIP_TF", "0") == "1"
    return [n for n in NETWORKS.values() if not (skip_tf and n.name == "resnet152_tensorflow")]


MODELS: list[ModelSpec] = [spec for network in enabled_networks() for spec in specs_for(network)]
