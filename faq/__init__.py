"""FAQ matching: Stack Overflow-format data (``faq.data``), model, baseline and evaluation.

Kept import-free so that importing one submodule (e.g. the cleaning used by a Triton Python
backend) does not pull in the others.
"""
