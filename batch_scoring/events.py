"""Sensor events on the wire: their JSON form, the checks every event passes before it is
stored, and the Kafka client settings for the local broker or Azure Event Hubs.

A message's key is ``device/sensor`` (so one series stays in one partition, in order); its
value is one reading, or a list of readings of that series (a device that batches):
``{"device": "D000", "sensor": "S00", "ts": "2024-01-01T00:00:00Z", "value": 51.2}``.
``ts`` is ISO 8601 (UTC when no zone is given) or seconds since the epoch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from batch_scoring.schema import Partition

TOPIC = "sensor-readings"
FIELDS = ("device", "sensor", "ts", "value")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # older readings are refused as "too old"
MAX_AHEAD = timedelta(days=1)  # readings stamped further ahead of the wall clock are refused
EVENT_HUBS_PORT = 9093


class Reading(NamedTuple):
    """One stored reading; a tuple, so that it is also the row the database copy takes."""

    device: str
    sensor: str
    ts: datetime
    value: float

    @property
    def key(self) -> str:
        return f"{self.device}/{self.sensor}"

    def to_json(self) -> dict:
        return {"device": self.device, "sensor": self.sensor, "ts": self.ts.isoformat(), "value": self.value}


class Refusal(ValueError):
    """Why an event cannot be stored: ``kind`` to count by, the message for the dead-letter table."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Rejected:
    """An event that cannot be stored, with the reason an operator reads in the dead-letter table."""

    kind: str
    reason: str
    item: int = 0  # its place in a list-valued message


def encode(readings: list[Reading]) -> bytes:
    """One message for readings of one series (a single object when there is one)."""
    first = readings[0]
    return encode_series(
        first.device, first.sensor, [r.ts.isoformat() for r in readings], [r.value for r in readings]
    )


def encode_series(device: str, sensor: str, stamps: Sequence[str], values: Sequence[float]) -> bytes:
    """:func:`encode` for times already in ISO 8601, without a Reading per value: the simulator
    sends millions a minute. A finite float's repr is its JSON number (NaN and infinities are
    written as ``json`` does, for tests of their refusal)."""
    head = f'{{"device":{json.dumps(device)},"sensor":{json.dumps(sensor)},"ts":"'
    numbers = [repr(v) if math.isfinite(v) else json.dumps(v) for v in map(float, values)]
    items = [f'{head}{ts}","value":{number}}}' for ts, number in zip(stamps, numbers, strict=True)]
    return (items[0] if len(items) == 1 else "[" + ",".join(items) + "]").encode()


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time ("Z" accepted) as an aware UTC datetime; UTC when it names no zone."""
    ts = datetime.fromisoformat(text)  # Python 3.11 reads "Z" itself
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts if ts.tzinfo is UTC else ts.astimezone(UTC)


def _timestamp(raw: object) -> datetime:
    if isinstance(raw, str):  # the usual case first: this runs for every reading
        return parse_utc(raw)
    if isinstance(raw, bool):
        raise ValueError("ts is a boolean")
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            raise ValueError("ts is not finite")
        return datetime.fromtimestamp(raw, UTC)
    raise ValueError(f"ts is a {type(raw).__name__}, not a time")


_CHECKED: set[tuple[str, str]] = set()  # series names already found safe: most events repeat them


def check(document: object, key: str | None, now: datetime) -> Reading:
    """The reading in ``document``; :class:`Refusal` with the reason when it is not one."""
    if not isinstance(document, dict):
        raise Refusal("not an object", f"not a JSON object but a {type(document).__name__}")
    try:
        device, sensor, value, raw_ts = (
            document["device"],
            document["sensor"],
            document["value"],
            document["ts"],
        )
    except KeyError:
        missing = ", ".join(name for name in FIELDS if name not in document)
        raise Refusal("missing field", f"missing field(s): {missing}") from None
    if not isinstance(device, str) or not isinstance(sensor, str):
        raise Refusal("wrong type", "device and sensor must be strings")
    if (device, sensor) not in _CHECKED:
        try:
            Partition(device, sensor)
        except ValueError as exc:
            raise Refusal("bad name", str(exc)) from None
        if len(_CHECKED) >= 1_000_000:
            _CHECKED.clear()
        _CHECKED.add((device, sensor))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refusal("wrong type", f"value is a {type(value).__name__}, not a number")
    if not math.isfinite(value):
        raise Refusal("not finite", f"value is {value}")
    try:
        ts = _timestamp(raw_ts)
    except (ValueError, OverflowError, OSError) as exc:
        raise Refusal("bad time", f"bad ts {raw_ts!r}: {exc}") from None
    if ts < EARLIEST:
        raise Refusal("too old", f"ts {ts.isoformat()} is before {EARLIEST.date()}")
    if ts > now + MAX_AHEAD:
        raise Refusal("in the future", f"ts {ts.isoformat()} is more than {MAX_AHEAD} ahead of the clock")
    reading = Reading(device, sensor, ts, float(value))
    if key is not None and key != reading.key:
        raise Refusal("key mismatch", f"message key {key!r} is not the reading's series {reading.key!r}")
    return reading


def decode(value: bytes | None, key: bytes | None, now: datetime) -> tuple[list[Reading], list[Rejected]]:
    """The readings of one message and what was refused in it (each item judged on its own)."""
    try:
        document = json.loads(value or b"")  # NaN and Infinity parse, and are refused below
    except (ValueError, UnicodeDecodeError) as exc:
        return [], [Rejected("not JSON", f"not JSON: {exc}")]
    try:
        key_text = key.decode() if key is not None else None
    except UnicodeDecodeError:
        return [], [Rejected("bad key", "message key is not UTF-8")]
    items = document if isinstance(document, list) else [document]
    if not items:
        return [], [Rejected("empty", "an empty list")]
    readings, rejected = [], []
    for index, item in enumerate(items):
        try:
            readings.append(check(item, key_text, now))
        except Refusal as exc:
            rejected.append(Rejected(exc.kind, str(exc), index))
    return readings, rejected


def kafka_config(bootstrap: str | None = None, event_hubs: str | None = None) -> dict[str, str]:
    """librdkafka settings for the local broker (``bootstrap``) or an Event Hubs namespace
    (``event_hubs``, its connection string: SASL_SSL on port 9093, user ``$ConnectionString``)."""
    if event_hubs:
        parts = dict(p.split("=", 1) for p in event_hubs.strip().strip(";").split(";") if "=" in p)
        endpoint = parts.get("Endpoint", "")
        if not endpoint.startswith("sb://"):
            raise ValueError("not an Event Hubs connection string (no Endpoint=sb://...)")
        host = endpoint.removeprefix("sb://").strip("/")
        return {
            "bootstrap.servers": f"{host}:{EVENT_HUBS_PORT}",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "$ConnectionString",
            "sasl.password": event_hubs.strip(),
        }
    if not bootstrap:
        raise ValueError("give a broker address (--bootstrap) or an Event Hubs connection string")
    return {"bootstrap.servers": bootstrap}


def utc_now() -> datetime:
    return datetime.now(UTC)


def ensure_topic(
    config: dict[str, str], topic: str = TOPIC, partitions: int = 8, timeout: float = 30.0
) -> None:
    """Create ``topic`` with ``partitions`` unless it exists (an Event Hub is made in Azure)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(config)
    if topic in admin.list_topics(timeout=timeout).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)], request_timeout=timeout)
    futures[topic].result(timeout)
