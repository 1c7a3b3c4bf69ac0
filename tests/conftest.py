import pytest
import torch

# pytest-xdist: the tests that time models against each other run alone (tests/_turns.py)
from _turns import ALONE, alone, pytest_collection_modifyitems, pytest_runtest_protocol  # noqa: F401

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def zoo_models() -> list[str]:
    """benchbench's own models (tests register models of family "test" of their own)."""
    import benchbench as bb

    return [n for n in bb.list_models()
            if bb.model_card(n).builder.__module__.startswith("benchbench.zoo")]
