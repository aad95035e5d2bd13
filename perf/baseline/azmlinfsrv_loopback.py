"""``azmlinfsrv``, Azure ML's scoring server, bound to 127.0.0.1 instead of 0.0.0.0.

azureml-inference-server-http 1.5.1 hard-codes ``0.0.0.0`` as the address it hands to
gunicorn. A benchmark on a shared machine should not listen on every interface, so this
entry point sets the package's own ``DEFAULT_HOST`` to loopback and then runs the unchanged
server: same arguments (``--entry_script``, ``--model_dir``, ``--port``, ``--worker_count``),
same gunicorn workers, same request handling.
"""

from __future__ import annotations

import sys

from azureml_inference_server_http import amlserver

LOOPBACK = "127.0.0.1"


def main() -> None:
    amlserver.DEFAULT_HOST = LOOPBACK  # read by amlserver.run() when it starts gunicorn
    sys.argv[0] = "azmlinfsrv"
    amlserver.run()


if __name__ == "__main__":
    main()
