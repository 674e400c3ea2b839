"""Models and the model registry."""

from dlexp.models.registry import (
    ModelEntry,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = ["ModelEntry", "create_model", "get_model_entry", "list_models", "register_model"]
