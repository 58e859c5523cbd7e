"""/models: the configured model registry, each key with its language and readiness."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_restx import Namespace, Resource

from app.api import schemas
from app.api.contract import returns
from app.stories.models import LANGUAGES

ns = Namespace("models", description="Configured language models")


def model_listing() -> list[dict[str, Any]]:
    """Registry keys with the language each is the default for (checked, never loaded)."""
    from app.generation.registry import ModelRegistry

    registry = current_app.extensions.get("relay.registry") or ModelRegistry.from_config(
        current_app.config
    )
    return [
        {
            "key": info["key"],
            "language": info.get("language") or (info["key"] if info["key"] in LANGUAGES else None),
            "source": info["source"],
            "name": info["name"],
            "loadable": info["ready"],
            "loaded": info["loaded"],
            "problem": info["problem"],
        }
        for info in registry.describe()
    ]


@ns.route("")
class ModelList(Resource):
    @ns.doc(security=[])
    @returns(ns, schemas.ModelList, description="The configured models")
    def get(self):
        """Models a story can use: key, default language, whether it can be loaded."""
        return {"models": model_listing()}
