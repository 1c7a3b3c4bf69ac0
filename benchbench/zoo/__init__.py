from ._registry import ModelCard, Reported, create_model, list_models, model_card, register_model

__all__ = ["ModelCard", "Reported", "create_model", "list_models", "model_card", "register_model"]
