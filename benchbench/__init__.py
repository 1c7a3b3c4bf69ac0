"""benchbench: speed/accuracy benchmarking of real-time semantic segmentation networks.

The model registry is imported on first use (``benchbench.create_model`` and friends), so that
``bench --help`` and the commands that need no model do not import torch."""
__version__ = "0.1.0"

_FROM_ZOO = ("Reported", "create_model", "list_models", "model_card", "register_model")


def __getattr__(name: str):
    if name in _FROM_ZOO:
        from . import zoo
        return getattr(zoo, name)
    raise AttributeError(f"module 'benchbench' has no attribute {name!r}")


def analyze(*args, **kwargs):
    from .analysis import analyze as _analyze
    return _analyze(*args, **kwargs)


def run_suite(*args, **kwargs):
    from .runner import run_suite as _run_suite
    return _run_suite(*args, **kwargs)


__all__ = ["Reported", "__version__", "analyze", "create_model", "list_models", "model_card",
           "register_model", "run_suite"]
