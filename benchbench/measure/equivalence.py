"""Output equivalence: is a fast backend still computing the same thing?

Before a cell's backend is prepared, the same fixed input runs through the model in eager
fp32 on the same device (TF32 off on CUDA, so the reference is true fp32). After preparation
the backend's own ``infer`` runs that input, and the record gets the max / mean absolute
difference of the logits and ``argmax_agreement``, the share of pixels whose class agrees.
Below the suite's ``equivalence.min_argmax_agreement`` (default 99.5%) the cell is marked
``equivalence: mismatch`` -- so a fast but wrong backend never passes unnoticed. Logits that
are not finite (fp16 overflow: fp16 tops out at 65504) are a mismatch with that reason, not
a crash.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

FP16_MAX = 65504.0
REFERENCE_LABEL = "eager-fp32"


@dataclass
class Reference:
    logits: torch.Tensor | None      # on the CPU, float32; None for the reference cell itself
    device: str
    max_abs_logit: float | None = None


def is_reference_cell(cell) -> bool:
    """The eager fp32 CPU cell with default options *is* the reference (on CUDA, eager fp32
    runs cuDNN's TF32 by default, so it is compared too)."""
    return (cell.backend == "eager" and cell.precision == "fp32" and not cell.backend_options
            and cell.device == "cpu")


def eager_fp32_forward(model, example: torch.Tensor, device: torch.device):
    """The model's own output for ``example``: eager, fp32, TF32 off on CUDA (true fp32)."""
    from .backends.base import apply_tf32, apply_tf32_state, tf32_state

    saved = tf32_state() if device.type == "cuda" else None
    try:
        if saved is not None:
            apply_tf32(False)
        model = model.eval().to(device=device, dtype=torch.float32)
        with torch.inference_mode():
            return model(example.to(device))
    finally:
        if saved is not None:
            apply_tf32_state(saved)


def reference_from(output: torch.Tensor, device: torch.device, is_reference: bool) -> Reference:
    """The reference of a cell from its eager fp32 output (``eager_fp32_forward``)."""
    if is_reference:
        return Reference(None, str(device))
    logits = output.float().cpu()
    finite = torch.isfinite(logits)
    peak = float(logits[finite].abs().max()) if finite.any() else None
    return Reference(logits, str(device), peak)


def reference_logits(model, example: torch.Tensor, device: torch.device,
                     is_reference: bool) -> Reference:
    if is_reference:
        return Reference(None, str(device))
    return reference_from(eager_fp32_forward(model, example, device), device, False)


def compare_to_reference(ref: Reference, infer, example: torch.Tensor,
                         min_agreement: float) -> dict:
    base = {"equivalence_reference": f"{REFERENCE_LABEL}/{ref.device}",
            "equivalence_min_argmax_agreement": min_agreement}
    if ref.logits is None:
        return {**base, "equivalence": "reference", "argmax_agreement": 1.0,
                "logits_max_abs_diff": 0.0, "logits_mean_abs_diff": 0.0}
    try:
        with torch.inference_mode():
            out = infer(example)
    except Exception as exc:  # noqa: BLE001 - the backend's infer failing is the finding
        return {**base, "equivalence": "unchecked", "argmax_agreement": None,
                "equivalence_reason": f"the backend could not run the check input: "
                                      f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                if str(exc).strip() else type(exc).__name__}
    out = out.detach().float().cpu()
    return {**base, **_compare(ref, out, min_agreement)}


def _compare(ref: Reference, out: torch.Tensor, min_agreement: float) -> dict:
    expected = ref.logits
    if out.shape != expected.shape:
        return {"equivalence": "mismatch", "argmax_agreement": None,
                "equivalence_reason": f"output shape {tuple(out.shape)} differs from eager "
                                      f"fp32's {tuple(expected.shape)}"}
    if not torch.isfinite(expected).all():
        return {"equivalence": "unchecked", "argmax_agreement": None,
                "equivalence_reason": "eager fp32's own logits are not finite for the check "
                                      "input (randomly initialised weights?)"}
    agreement = float((out.argmax(1) == expected.argmax(1)).float().mean())
    bad = ~torch.isfinite(out)
    if bad.any():
        share = float(bad.float().mean())
        reason = f"{share:.1%} of the logits are not finite (inf/nan)"
        if ref.max_abs_logit is not None and ref.max_abs_logit > FP16_MAX:
            reason += (f": eager fp32 reaches |logit| {ref.max_abs_logit:.3g}, beyond fp16's "
                       f"range ({FP16_MAX:.0f}) -- overflow")
        return {"equivalence": "mismatch", "argmax_agreement": agreement,
                "logits_max_abs_diff": None, "logits_mean_abs_diff": None,
                "logits_nonfinite_share": share, "equivalence_reason": reason}
    diff = (out - expected).abs()
    fields = {"argmax_agreement": agreement, "logits_max_abs_diff": float(diff.max()),
              "logits_mean_abs_diff": float(diff.mean()),
              "logits_max_abs_reference": ref.max_abs_logit}
    if agreement < min_agreement:
        return {"equivalence": "mismatch", **fields,
                "equivalence_reason": f"argmax agrees on {agreement:.2%} of pixels, below "
                                      f"{min_agreement:.2%}"}
    return {"equivalence": "match", **fields}
