"""Image classification: decoding, per-network preprocessing, top-k postprocessing, networks.

The same code runs in the Triton Python-backend models (``ensembles/steps/imaging.py``),
in the client and in the parity tests, so a photo is prepared identically everywhere.
"""
