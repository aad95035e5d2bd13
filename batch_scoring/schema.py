"""Column names, partition naming and blob layout shared by every batch-scoring step.

The data schema is the original architecture's (`TS, Device, Sensor, Value`); predictions add
`Prediction` (0 normal, 1 anomaly, as the original mapped OneClassSVM's +1/-1) and `Score` (the raw
decision function: negative means outside the learned region).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

TS, DEVICE, SENSOR, VALUE = "TS", "Device", "Sensor", "Value"
DATA_COLUMNS = [TS, DEVICE, SENSOR, VALUE]
# Ground truth written by the generator only; scoring never reads it.
LABEL, LABEL_TYPE = "Anomaly", "AnomalyType"
ANOMALY_TYPES = ("spike", "drift", "stuck")  # the values of LABEL_TYPE
PREDICTION, SCORE = "Prediction", "Score"
OUTPUT_COLUMNS = [*DATA_COLUMNS, PREDICTION, SCORE]

# Container names in Blob Storage (sub-folders of a local store).
DATA, MODELS, PREDS = "data", "models", "preds"
MODEL_MANIFEST = "manifest.json"
DATA_MANIFEST = "manifest.json"
RUN_SUMMARY = "_SUCCESS.json"

# Device and sensor names become path segments: keep them to a safe alphabet.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DATA_SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True, order=True)
class Partition:
    """One (device, sensor) series: the unit of training, scoring, retry and output."""

    device: str
    sensor: str

    def __post_init__(self) -> None:
        for part in (self.device, self.sensor):
            if not _NAME.match(part):
                raise ValueError(f"unsafe device/sensor name {part!r}")

    @property
    def key(self) -> str:
        return f"{self.device}/{self.sensor}"

    @property
    def model_blob(self) -> str:
        return f"{self.key}.onnx"

    def data_blob(self, fmt: str = "parquet") -> str:
        return f"{self.key}.{fmt}"

    @property
    def pred_blob(self) -> str:
        return f"{self.key}.parquet"

    @classmethod
    def parse(cls, item: str) -> Partition:
        """Accept a key (`D0/S1`), a blob name (`D0/S1.parquet`) or a mounted file path.

        Azure ML hands `run()` file paths from the mounted uri_folder; the local runner hands
        keys. Both end in `<device>/<sensor>[.ext]`.
        """
        path = PurePosixPath(str(item).replace("\\", "/"))
        if path.suffix in DATA_SUFFIXES:
            path = path.with_suffix("")
        if len(path.parts) < 2:
            raise ValueError(f"not a partition: {item!r}")
        return cls(path.parts[-2], path.parts[-1])


def device_name(i: int, n: int) -> str:
    return f"D{i:0{max(3, len(str(n - 1)))}d}"


def sensor_name(i: int, n: int) -> str:
    return f"S{i:0{max(2, len(str(n - 1)))}d}"
