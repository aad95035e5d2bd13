"""The original architecture's style of deployment, for side-by-side measurements.

A ``score.py`` with ``init()``/``run(raw_data)`` served by ``azureml-inference-server-http``
(``azmlinfsrv``), Azure ML's own scoring server, which is what a user of the original
architecture runs today. Three scoring scripts, each importing the project's own code:

* ``score_faq_pairwise.py``: (a) the original's pairwise TF-IDF + gradient-boosted trees model;
* ``score_faq_sklearn.py``: (b) this project's FAQ pipeline, in scikit-learn;
* ``score_resnet_torch.py``: (c) ResNet-152 in eager PyTorch with the project's PIL preprocessing.

Request bodies (JSON, as the original's clients sent them): ``{"question": "..."}`` for the
FAQ scripts, ``{"image": "<base64 of the encoded image>"}`` for the image script.
"""

from __future__ import annotations

FAQ_FIELD = "question"
IMAGE_FIELD = "image"
TOP_K = 5
