"""Deployment of the Triton model repository: container image, Kubernetes, Azure ML.

Modules here run in two places: on a developer machine or CI (rendering and validating
manifests, writing Azure ML YAML) and, for ``deploy.security`` and ``deploy.entrypoint``,
inside the serving container, whose Python is 3.10 and has only the standard library plus
``deploy/requirements-container.txt``. Keep those two modules standard-library only.
"""
