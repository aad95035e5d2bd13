"""``azmlinfsrv`` bound to 127.0.0.1: azureml-inference-server-http 1.5.1 hard-codes 0.0.0.0,
and a benchmark on a shared machine should not listen on every interface. Otherwise the
unchanged server, arguments and gunicorn workers."""

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
