"""The Python-backend steps of every ensemble, one short :class:`~ensembles.runtime.Step` each.

Each spec names its step as ``"module:Class"`` (``ModelSpec.python_step``); ``serving.render``
writes the ``model.py`` shim that runs it on :mod:`ensembles.runtime`.
"""
