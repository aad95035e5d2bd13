"""The image ensembles' Python steps: encoded image bytes in, top-K ImageNet classes out.

The recipe per network is ``imaging.preprocess.CONFIGS[PREPROCESS]``, the code the clients and
the parity tests use; tensor names and ``TOP_K`` come from ``imaging.specs`` through the config.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ensembles.runtime import Arrays, ConfigError, RequestError, Step, StepConfig
from imaging.artifacts import is_random, random_weights_banner
from imaging.labels import imagenet_labels
from imaging.postprocess import top_k
from imaging.preprocess import CONFIGS, ImageError, preprocess_bytes


class ImagePreprocess(Step):
    """Encoded images (one per row) -> the network's input.

    Every image of every request in the dynamic batch is decoded on a small thread pool (PIL
    releases the GIL while decoding and resizing); a bad image refuses its own request only.
    """

    def __init__(self, config: StepConfig, log: object = None) -> None:
        super().__init__(config, log)
        name = config.text("PREPROCESS")
        if name not in CONFIGS:
            raise ConfigError(f"parameter PREPROCESS={name!r} is not one of {sorted(CONFIGS)}")
        self.recipe = CONFIGS[name]
        (self.image,), (self.pixels,) = config.tensors(inputs=1, outputs=1)
        declared = config.output_dims.get(self.pixels)
        if declared != self.recipe.shape:
            raise ConfigError(f"output dims {declared} do not match recipe {name} shape {self.recipe.shape}")
        self.pool = ThreadPoolExecutor(max_workers=config.integer("DECODE_THREADS", 2))

    def _decode(self, item: object) -> np.ndarray:
        if isinstance(item, str):
            raise ImageError("must be binary image bytes, not text")
        return preprocess_bytes(item, self.recipe)  # type: ignore[arg-type]

    def _collect(self, futures: list[Future]) -> Arrays:
        arrays = []
        for row, future in enumerate(futures):
            try:
                arrays.append(future.result())
            except ImageError as exc:
                raise RequestError(f"{self.image}[{row}]: {exc}") from None
            except Exception as exc:  # a decoder's own bug on odd bytes is still the image's fault
                self.log.log_error(f"{self.config.model_name}: {type(exc).__name__} decoding: {exc}")
                raise RequestError(
                    f"{self.image}[{row}] could not be decoded ({type(exc).__name__})"
                ) from None
        return {self.pixels: np.stack(arrays).astype(np.float32, copy=False)}

    def prepare_all(self, requests: list[Arrays]) -> list[Arrays | BaseException]:
        jobs = [
            [self.pool.submit(self._decode, item) for item in r[self.image].ravel().tolist()]
            for r in requests
        ]
        results: list[Arrays | BaseException] = []
        for futures in jobs:
            try:
                results.append(self._collect(futures))
            except RequestError as exc:
                results.append(exc)
        return results

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ImagePostprocess(Step):
    """Class scores -> sorted class ids, ImageNet names, probabilities (softmax first for logits).

    At load it reads the export's ``provenance.json`` and warns loudly when the network has
    random weights: a meaningless label must not pass unnoticed.
    """

    def __init__(self, config: StepConfig, log: object = None) -> None:
        super().__init__(config, log)
        (self.scores,), self.outputs = config.tensors(inputs=1, outputs=3)
        self.apply_softmax = config.flag("APPLY_SOFTMAX")
        self.k = config.integer("TOP_K")
        self.network = config.text("NETWORK", config.model_name)
        self.labels = np.array([label.encode("utf-8") for label in imagenet_labels()], dtype=np.object_)
        provenance = config.version_dir / "provenance.json"
        if not provenance.is_file():
            self.log.log_warn(f"{self.network}: no provenance.json; weights unknown")
            return
        info = json.loads(provenance.read_text())
        if is_random(info):
            for _ in range(3):
                self.log.log_warn(random_weights_banner(self.network))
        else:
            self.log.log_info(f"{self.network}: weights {info.get('weights')} ({info.get('framework')})")

    def compute(self, batch: Arrays) -> Arrays:
        ids, probabilities = top_k(batch[self.scores], self.k, self.apply_softmax)
        return dict(zip(self.outputs, (ids, self.labels[ids], probabilities), strict=True))
