"""Make the ``deploy`` package importable in tests.

``deploy/`` is not (yet) in pyproject's ``[tool.setuptools.packages.find] include``, so the
editable install does not map it; until it is, put the checkout on ``sys.path``.
"""

from __future__ import annotations

import sys

from serving.paths import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
