"""Endpoints of the session's Triton server for the image tests."""

from __future__ import annotations

import pytest

from serving.client import Endpoint
from serving.triton import TritonServer


@pytest.fixture(scope="session")
def http_endpoint(triton_server: TritonServer) -> Endpoint:
    return Endpoint(url=triton_server.http_url, protocol="http")


@pytest.fixture(scope="session")
def grpc_endpoint(triton_server: TritonServer) -> Endpoint:
    return Endpoint(url=triton_server.grpc_url, protocol="grpc")
