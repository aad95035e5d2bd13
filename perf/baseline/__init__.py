"""The original architecture's style of deployment, for side-by-side measurements.

A ``score.py`` with ``init()``/``run(raw_data)`` served by ``azmlinfsrv`` (Azure ML's own
scoring server, what a user of the original architecture runs today), importing the project's
own code: ``score_faq.py`` with (a) the original's pairwise TF-IDF + gradient-boosted trees or
(b) this project's FAQ pipeline in scikit-learn; (c) ``score_resnet_torch.py``, ResNet-152 in
eager PyTorch. Bodies are JSON, as the original's
clients sent them: ``{"question": "..."}`` and ``{"image": "<base64 of the encoded image>"}``.
"""

from __future__ import annotations

FAQ_FIELD, IMAGE_FIELD = "question", "image"  # top-k: the served ensembles' own, from their specs
