"""The device simulator: the generator's synthetic series sent to the topic in time order.

Every series of a ``GenSpec`` is generated as for the batch store, then its readings go out
minute by minute across all series (as devices would send them), ``per_message`` readings of
one series per message, at ``rate`` readings per second (0: as fast as the broker takes them).
The anomaly labels never travel: they are written aside for the evaluation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from batch_scoring.events import TOPIC, encode_series
from batch_scoring.generate import GenSpec, generate_series
from batch_scoring.schema import DEVICE, LABEL, SENSOR, TS, VALUE

log = logging.getLogger(__name__)


@dataclass
class Sent:
    readings: int = 0
    messages: int = 0
    seconds: float = 0.0


def series_frames(spec: GenSpec) -> list[pd.DataFrame]:
    return [generate_series(spec, i) for i in range(spec.series)]


def send(
    config: dict[str, str],
    spec: GenSpec,
    *,
    topic: str = TOPIC,
    rate: float = 0.0,
    per_message: int = 1,
    labels: Path | None = None,
    counter: Any = None,
) -> Sent:
    """Send every reading of ``spec`` in time order; returns what was sent once all is delivered.
    ``counter``, a ``multiprocessing.Value``, follows the readings handed to the client (for
    measuring a consumer's lag from another process)."""
    from confluent_kafka import KafkaException, Producer

    frames = series_frames(spec)
    if labels is not None:
        columns = [TS, DEVICE, SENSOR, LABEL]
        labels.parent.mkdir(parents=True, exist_ok=True)
        pd.concat([f[columns] for f in frames]).to_parquet(labels, index=False)
    settings = {"linger.ms": "20", "batch.num.messages": "10000", "compression.type": "none", **config}
    producer, failed = Producer(settings), []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    # Per series once, not per message: its names, its message key and its values as floats.
    series_list = [
        (
            f[DEVICE].iat[0],
            f[SENSOR].iat[0],
            f"{f[DEVICE].iat[0]}/{f[SENSOR].iat[0]}".encode(),
            f[VALUE].tolist(),
        )
        for f in frames
    ]
    stamps = [t.isoformat() for t in frames[0][TS].dt.tz_localize("UTC")] if frames else []
    sent, started = Sent(), time.monotonic()
    for start in range(0, spec.readings, per_message):
        end = min(start + per_message, spec.readings)
        for device, sensor, key, values in series_list:
            message = encode_series(device, sensor, stamps[start:end], values[start:end])
            while True:
                try:
                    producer.produce(topic, message, key, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let it drain
                    producer.poll(0.05)
            producer.poll(0)
            sent.readings, sent.messages = sent.readings + end - start, sent.messages + 1
        if counter is not None:
            counter.value = sent.readings
        if rate > 0:
            time.sleep(max(0.0, started + sent.readings / rate - time.monotonic()))
    left = producer.flush(60)
    if left or failed:
        raise KafkaException(f"{left} messages undelivered, {len(failed)} refused: {failed[:3]}")
    sent.seconds = time.monotonic() - started
    log.info("sent %d readings in %d messages in %.1f s", sent.readings, sent.messages, sent.seconds)
    return sent
