"""Fixtures for the FAQ tests against the session's real Triton server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from faq.data import DEFAULT_DATA_DIR, ORIGINALS_FILE
from faq.specs import POSTPROCESS, TABLE_FILE
from serving.client import Endpoint
from serving.triton import TritonServer


@dataclass(frozen=True)
class FaqTable:
    """The originals the server answers with (the table shipped in the repository)."""

    faq_id: list[int]
    question: list[str]
    answer: list[str]
    raw_question: list[str]  # the original HTML text from orig-q.tsv.gz, as a user would paste it


@pytest.fixture(scope="session")
def faq_table(model_repository: Path) -> FaqTable:
    table = json.loads((model_repository / POSTPROCESS.name / "1" / TABLE_FILE).read_text())
    raw = pd.read_csv(DEFAULT_DATA_DIR / ORIGINALS_FILE, sep="\t").set_index("Id")["Text0"]
    return FaqTable(
        table["faq_id"], table["question"], table["answer"], [str(raw[i]) for i in table["faq_id"]]
    )


@pytest.fixture(scope="session", params=["http", "grpc"])
def endpoint(request: pytest.FixtureRequest, triton_server: TritonServer) -> Endpoint:
    url = triton_server.http_url if request.param == "http" else triton_server.grpc_url
    return Endpoint(url=url, protocol=request.param)
