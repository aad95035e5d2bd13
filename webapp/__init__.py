"""Example web app: FAQ matching as you type and image classification side by side, on Triton.

``python -m webapp --triton-url localhost:8000`` (or ``make webapp``) serves the page on
http://127.0.0.1:8080; see docs/webapp.md.
"""
