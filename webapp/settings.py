"""Settings of the example web app: command-line options, else ``WEBAPP_*`` environment variables.

Everything a deployment changes (where Triton is, its API key, the limits) is a setting, so
the same app runs against the local server, a Kubernetes service or an Azure ML endpoint.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.client import Endpoint

# The ensembles the page shows, in the order of its columns. The pretrained one comes first:
# it is the one whose labels mean something.
DEFAULT_IMAGE_MODELS: tuple[str, ...] = ("efficientnet_lite0", "resnet152_pytorch", "resnet152_tensorflow")

_RANDOM_WEIGHTS = (
    "Random weights: no ResNet-152 checkpoint ships offline, so its labels are meaningless (unless "
    "it was exported with real weights). It shows the serving path and its latency."
)
# Shown under a model's column, so nobody mistakes a random network's output for a prediction.
DEFAULT_MODEL_NOTES: dict[str, str] = {
    "efficientnet_lite0": "Pretrained on ImageNet: its labels are real predictions.",
    "resnet152_pytorch": _RANDOM_WEIGHTS,
    "resnet152_tensorflow": _RANDOM_WEIGHTS,
}


class WebAppSettings(BaseSettings):
    """Where Triton is and what the page may send it."""

    model_config = SettingsConfigDict(env_prefix="WEBAPP_", extra="ignore")

    triton_url: str = Field("localhost:8000", description="Triton address: host:port or https://host")
    protocol: Literal["http", "grpc"] = "http"
    api_key: SecretStr | None = Field(None, description="sent as the `api-key` header")
    bearer_token: SecretStr | None = Field(None, description="sent as `Authorization: Bearer` (Azure ML)")
    host: str = "127.0.0.1"
    port: int = 8080
    faq_model: str = "faq_match"
    image_models: tuple[str, ...] = DEFAULT_IMAGE_MODELS
    model_notes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MODEL_NOTES))
    top_k: int = Field(5, ge=1, le=20, description="FAQ matches returned per question")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="largest image accepted")
    max_question_chars: int = Field(1000, gt=0, description="longest question accepted")
    timeout_s: float = Field(30.0, gt=0, description="network timeout of each Triton call")
    retry_s: float = Field(10.0, ge=0, description="how long a call retries while Triton restarts")

    def endpoint(self) -> Endpoint:
        """The shared client endpoint: the FAQ and image clients take it as it is."""
        return Endpoint(
            url=self.triton_url,
            protocol=self.protocol,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            bearer_token=self.bearer_token.get_secret_value() if self.bearer_token else None,
        )
