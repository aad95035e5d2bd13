"""Every model the stack serves, gathered from the areas that define them."""

from __future__ import annotations

from serving.modelspec import ModelSpec


def all_models() -> list[ModelSpec]:
    """Return every model spec; each area keeps its own specs next to its code."""
    from faq.specs import MODELS as FAQ_MODELS
    from imaging.specs import MODELS as IMAGE_MODELS

    return [*FAQ_MODELS, *IMAGE_MODELS]


def models_by_name() -> dict[str, ModelSpec]:
    return {spec.name: spec for spec in all_models()}
