"""The scheduled retraining as one process: the Azure ML command job's entry point.

``python -m batch_scoring.retrain_job --days 7`` runs the same two steps as the Kubernetes
CronJob (``k8s/batch/retrain.yaml``): ``snapshot`` (the last DAYS of closed intervals from
PostgreSQL into the store's ``data``), then ``train`` (a new model version, served only if it
passes the gate). The exit code is the first failing step's: 1 when the gate refused the version
or a series failed to train, 2 for a setting a user can fix, 3 when nothing was ingested yet.

Secrets never sit in the job's YAML. The two the steps need, ``SENSOR_DB_URL`` and (for
``--store blob``) ``AZURE_STORAGE_CONNECTION_STRING``, come from the environment when set there
(Kubernetes Secrets, a local run), else from an Azure Key Vault (``--key-vault``, usually the
workspace's own) read with the compute's managed identity. Reading them is bounded by
``--timeout``. ``SENSOR_TOPIC`` names the topic when it is not the default.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

log = logging.getLogger("batch_scoring.retrain_job")

# environment variable -> Key Vault secret name (Key Vault names allow letters, digits and "-")
SECRETS = {
    "SENSOR_DB_URL": "sensor-db-url",
    "AZURE_STORAGE_CONNECTION_STRING": "batch-storage-connection-string",
}


def secrets_from_key_vault(vault_url: str, names: dict[str, str], timeout_s: float) -> dict[str, str]:
    """``names`` (variable -> secret) read from the vault; raises RuntimeError within about
    ``timeout_s`` when the vault cannot be reached or a secret is missing."""
    from azure.core.exceptions import AzureError
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    # Inside an Azure ML job DefaultAzureCredential finds the compute's managed identity; give
    # that identity "Key Vault Secrets User" on the vault.
    client = SecretClient(
        vault_url,
        DefaultAzureCredential(exclude_interactive_browser_credential=True),
        connection_timeout=timeout_s,
        read_timeout=timeout_s,
        retry_total=1,
    )
    out = {}
    try:
        for variable, secret in names.items():
            value = client.get_secret(secret).value
            if not value:
                raise RuntimeError(f"secret {secret!r} in {vault_url} is empty")
            out[variable] = value
    except AzureError as exc:
        raise RuntimeError(f"cannot read secret(s) from {vault_url}: {type(exc).__name__}: {exc}") from exc
    return out


def steps(days: float, store: str, workers: int) -> list[list[str]]:
    """The CLI commands the job runs, in order (the CronJob's init container and container)."""
    return [
        ["snapshot", f"--days={days:g}", f"--store={store}"],
        ["train", f"--store={store}", f"--workers={workers}", "--no-progress"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--days", type=float, default=7.0, help="history to train on, up to the last closed interval"
    )
    parser.add_argument("--store", default="blob", help="where data and models live (as the CLI's --store)")
    parser.add_argument("--workers", type=int, default=2, help="training processes")
    parser.add_argument(
        "--key-vault", default=os.environ.get("KEY_VAULT_URL"), help="https://<name>.vault.azure.net/"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for reading the secrets")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    logging.getLogger("azure").setLevel(logging.WARNING)  # not every request and header
    env = dict(os.environ)
    needed = {v: s for v, s in SECRETS.items() if args.store == "blob" or not v.startswith("AZURE_STORAGE")}
    missing = {variable: secret for variable, secret in needed.items() if not env.get(variable)}
    if missing:
        if not args.key_vault:
            log.error("%s not set and no --key-vault to read them from", ", ".join(missing))
            return 2
        try:
            env.update(secrets_from_key_vault(args.key_vault, missing, args.timeout))
        except RuntimeError as exc:
            log.error("%s", exc)
            return 2
        log.info("read %s from %s", ", ".join(missing), args.key_vault)
    for step in steps(args.days, args.store, args.workers):
        log.info("running %s", step[0])
        code = subprocess.run([sys.executable, "-m", "batch_scoring", *step], env=env, check=False).returncode
        if code:
            log.error("%s ended with exit code %d; later steps skipped", step[0], code)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
