"""FAQ matching: Stack Overflow-format data (``faq.data``), model, baseline and evaluation.

Kept import-free so that importing one submodule (e.g. the cleaning used by a Triton Python
backend, or the specs a client reads tensor names from) does not pull in the others.
"""

from pathlib import Path

DATASET_DIR = Path(__file__).resolve().parent / "datasets" / "stackoverflow_js"
"""The data set shipped with the package (read by ``faq.data``, fingerprinted by ``faq.specs``)."""
