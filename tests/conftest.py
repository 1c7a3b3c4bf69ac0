import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def zoo_models() -> list[str]:
    """benchbench's own models (tests register models of family "test" of their own)."""
    import benchbench as bb

    return [n for n in bb.list_models()
            if bb.model_card(n).builder.__module__.startswith("benchbench.zoo")]
