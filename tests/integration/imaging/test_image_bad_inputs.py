"""Every bad input of the issue is classified correctly or refused clearly; the server stays ready."""

from __future__ import annotations

import pytest
import tritonclient.http as httpclient

from imaging.bad_inputs import Case, cases
from imaging.client import infer_batch
from imaging.labels import ESPRESSO_ID
from imaging.networks import NETWORKS
from imaging.specs import model_names
from serving.client import Endpoint, RejectedInput

CASES = cases("coffee")
IMAGE_MODELS = [name for network in NETWORKS.values() for name in (network.name, *model_names(network))]


def assert_ready(endpoint: Endpoint) -> None:
    client = httpclient.InferenceServerClient(endpoint.address)
    try:
        assert client.is_server_ready()
        for name in IMAGE_MODELS:
            assert client.is_model_ready(name), name
    finally:
        client.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_efficientnet_handles_each_bad_input(http_endpoint: Endpoint, case: Case) -> None:
    if case.expect == "reject":
        with pytest.raises(RejectedInput) as info:  # HTTP 400, the bare reason
            infer_batch(http_endpoint, "efficientnet_lite0", [case.data])
        assert info.value.status == "400"
        assert info.value.message.startswith("IMAGE[0]") and case.reason in info.value.message
    else:
        (top5,) = infer_batch(http_endpoint, "efficientnet_lite0", [case.data])
        assert len(top5) == 5 and top5[0].score >= top5[-1].score
        if case.name != "one_pixel":  # made from the coffee photo: still an espresso
            assert top5[0].class_id == ESPRESSO_ID, (case.name, top5[0])
    assert_ready(http_endpoint)


@pytest.mark.parametrize("model", ["resnet152_pytorch", "resnet152_tensorflow"])
def test_resnets_refuse_the_same_inputs(http_endpoint: Endpoint, model: str) -> None:
    for case in CASES:
        if case.expect == "reject":
            with pytest.raises(RejectedInput, match=case.reason):
                infer_batch(http_endpoint, model, [case.data])
        else:
            (top5,) = infer_batch(http_endpoint, model, [case.data])
            assert len(top5) == 5
    assert_ready(http_endpoint)


def test_one_bad_image_in_a_request_names_its_position(http_endpoint: Endpoint) -> None:
    good = next(c.data for c in CASES if c.name == "cmyk")
    with pytest.raises(RejectedInput, match=r"IMAGE\[1\]: empty input"):
        infer_batch(http_endpoint, "efficientnet_lite0", [good, b"", good])
    assert_ready(http_endpoint)


def test_text_instead_of_bytes_is_refused(http_endpoint: Endpoint) -> None:
    with pytest.raises(RejectedInput, match="not a recognised image"):
        infer_batch(http_endpoint, "efficientnet_lite0", [b"hello"])
    assert_ready(http_endpoint)
