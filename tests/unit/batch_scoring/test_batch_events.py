"""Sensor events: every refusal has its kind and reason, batches are judged item by item, late
readings are parked, and the Kafka settings for Event Hubs are the SASL_SSL ones."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from batch_scoring.events import EVENT_HUBS_PORT, Reading, decode, encode, kafka_config
from batch_scoring.ingest import judge

NOW = datetime(2026, 6, 1, tzinfo=UTC)
GOOD = {"device": "D000", "sensor": "S00", "ts": "2026-05-31T12:00:00Z", "value": 51.5}


def one(document: object, key: bytes | None = b"D000/S00") -> tuple[list[Reading], list]:
    value = document if isinstance(document, bytes) else json.dumps(document).encode()
    return decode(value, key, NOW)


def test_a_good_reading_round_trips_through_its_message() -> None:
    reading = Reading("D000", "S00", datetime(2026, 5, 31, 12, tzinfo=UTC), 51.5)
    assert one(json.loads(encode([reading]))) == ([reading], [])
    assert one(GOOD)[0] == [reading]
    assert one({**GOOD, "ts": reading.ts.timestamp()})[0] == [reading]  # epoch seconds
    assert one({**GOOD, "ts": "2026-05-31T12:00:00"})[0] == [reading]  # no zone: UTC


def test_the_simulators_fast_encoding_is_the_same_json() -> None:
    finite = [51.5, -0.1, 1e-7, 3.0]
    readings = [
        Reading("D000", "S00", datetime(2026, 5, 31, 12, m, tzinfo=UTC), v) for m, v in enumerate(finite)
    ]
    assert json.loads(encode(readings[:1])) == readings[0].to_json()
    assert json.loads(encode(readings)) == [r.to_json() for r in readings]
    with_nan = [*readings, Reading("D000", "S00", datetime(2026, 5, 31, 13, tzinfo=UTC), float("nan"))]
    got, refused = decode(encode(with_nan), b"D000/S00", NOW)
    assert got == readings and [r.kind for r in refused] == ["not finite"]  # NaN still reaches the check


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (b"not json", "not JSON"),
        (b"", "not JSON"),
        ([1], "not an object"),
        ({"device": "D000", "sensor": "S00", "value": 1.0}, "missing field"),
        ({**GOOD, "value": "hot"}, "wrong type"),
        ({**GOOD, "value": True}, "wrong type"),
        ({**GOOD, "sensor": 7}, "wrong type"),
        ({**GOOD, "device": "../etc"}, "bad name"),
        ({**GOOD, "ts": "yesterday"}, "bad time"),
        ({**GOOD, "ts": [2026]}, "bad time"),
        ({**GOOD, "ts": "1970-01-01T00:00:00Z"}, "too old"),
        ({**GOOD, "ts": "2026-06-03T00:00:00Z"}, "in the future"),
        ({**GOOD, "device": "D001"}, "key mismatch"),
        ([], "empty"),
    ],
)
def test_each_bad_event_is_refused_with_its_kind(document: object, kind: str) -> None:
    readings, rejected = one(document)
    assert readings == [] and [r.kind for r in rejected] == [kind]
    assert rejected[0].reason


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_refused(constant: str) -> None:
    _, rejected = one(json.dumps(GOOD).replace("51.5", constant).encode())
    assert [r.kind for r in rejected] == ["not finite"]


def test_a_list_message_is_judged_item_by_item() -> None:
    later = {**GOOD, "ts": "2026-05-31T12:01:00Z"}
    readings, rejected = one([GOOD, {**GOOD, "value": None}, later])
    assert [r.ts.minute for r in readings] == [0, 1]
    assert [(r.kind, r.item) for r in rejected] == [("wrong type", 1)]


@dataclass
class Message:
    """What ``judge`` reads of a consumed message."""

    _partition: int
    _offset: int
    _value: bytes
    _key: bytes = b"D000/S00"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return self._key


def at(minute: int) -> bytes:
    return json.dumps(
        {**GOOD, "ts": (datetime(2026, 5, 31, 12, tzinfo=UTC) + timedelta(minutes=minute)).isoformat()}
    ).encode()


def test_readings_behind_the_watermark_by_more_than_the_lateness_are_parked_as_late() -> None:
    marks: dict = {}
    messages = [Message(0, 0, at(30)), Message(0, 1, at(25)), Message(0, 2, at(19)), Message(1, 0, at(0))]
    batch = judge(messages, marks, timedelta(minutes=10), "t")
    assert [r.ts.minute for r in batch.rows] == [30, 25, 0]  # 25 is late but within 10 minutes
    assert [r.ts.minute for r, _ in batch.late] == [19] and batch.late[0][1][:4] == ("t", 0, 2, 0)
    assert batch.ends == {0: 3, 1: 1}  # each partition's next offset
    assert marks[0].minute == 30 and marks[1].minute == 0  # a watermark per partition


def test_kafka_settings_for_the_local_broker_and_for_event_hubs() -> None:
    assert kafka_config("127.0.0.1:9092") == {"bootstrap.servers": "127.0.0.1:9092"}
    secret = "Endpoint=sb://plant.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc="
    config = kafka_config(event_hubs=secret)
    assert config["bootstrap.servers"] == f"plant.servicebus.windows.net:{EVENT_HUBS_PORT}"
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.mechanism"] == "PLAIN"
    assert config["sasl.username"] == "$ConnectionString" and config["sasl.password"] == secret
    with pytest.raises(ValueError, match="Event Hubs"):
        kafka_config(event_hubs="AccountName=x;AccountKey=y")
    with pytest.raises(ValueError, match="broker"):
        kafka_config()


def test_event_hubs_settings_reach_the_network_call_and_fail_there_clearly() -> None:
    """The real client with Event Hubs' settings, pointed at a namespace that cannot resolve:
    it gets as far as the network and reports the broker as unreachable, not a settings error."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    secret = "Endpoint=sb://does-not-exist.invalid/;SharedAccessKeyName=k;SharedAccessKey=abc="
    admin = AdminClient({**kafka_config(event_hubs=secret), "log_level": "0"})
    with pytest.raises(KafkaException) as caught:
        admin.list_topics(timeout=2)
    assert caught.value.args[0].name() in {"_TRANSPORT", "_TIMED_OUT", "_RESOLVE", "_ALL_BROKERS_DOWN"}
