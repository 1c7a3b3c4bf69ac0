"""benchbench: speed/accuracy benchmarking of real-time semantic segmentation networks."""
__version__ = "0.1.0"

from .zoo import Reported, create_model, list_models, model_card, register_model  # noqa: E402


def analyze(*args, **kwargs):
    from .analysis import analyze as _analyze
    return _analyze(*args, **kwargs)


def run_suite(*args, **kwargs):
    from .runner import run_suite as _run_suite
    return _run_suite(*args, **kwargs)


__all__ = ["Reported", "__version__", "analyze", "create_model", "list_models", "model_card",
           "register_model", "run_suite"]
