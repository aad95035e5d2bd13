"""Every model the stack serves, gathered from the areas that define them."""

from __future__ import annotations

from serving.modelspec import ModelSpec


def all_models(every_network: bool = False) -> list[ModelSpec]:
    """Return every model spec; each area keeps its own specs next to its code.

    ``every_network`` includes the image networks that ``SKIP_TF=1`` leaves out of a build.
    """
    from faq.specs import MODELS as FAQ_MODELS
    from imaging.networks import NETWORKS
    from imaging.specs import MODELS as IMAGE_MODELS
    from imaging.specs import specs_for

    if every_network:
        IMAGE_MODELS = [spec for network in NETWORKS.values() for spec in specs_for(network)]
    return [*FAQ_MODELS, *IMAGE_MODELS]


def models_by_name() -> dict[str, ModelSpec]:
    return {spec.name: spec for spec in all_models()}
