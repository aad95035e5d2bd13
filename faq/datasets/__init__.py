"""Data sets shipped with the package; ``python -m faq.datasets.build`` regenerates them."""
