"""``bench literature``: every row of the seed papers' comparison tables."""
from __future__ import annotations

from ._common import EXIT_OK


def add_parser(sub) -> None:
    lit = sub.add_parser("literature", help="the seed papers' published results")
    lit.add_argument("--dataset", choices=["cityscapes", "camvid"])
    lit.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..normalize import literature

    df = literature(args.dataset)
    cols = ["method", "dataset", "split", "input_h", "input_w", "gpu_printed", "tensorrt",
            "params_m", "gflops", "fps", "fps_norm", "fps_norm_estimate", "miou_val", "miou_test",
            "source", "note"]
    if args.json:
        print(df[cols + ["fps_text", "fps_norm_printed", "precision", "gpu"]].to_json(
            orient="records", indent=2))
        return EXIT_OK
    view = df[cols[:-1]].copy()
    view["fps_norm"] = [f"{v:.1f}{'~' if e else ''}" if v == v and v is not None else "-"
                        for v, e in zip(df["fps_norm"], df["fps_norm_estimate"])]
    print(view.to_string(index=False, na_rep="-"))
    print("fps_norm = fps / GPU factor (1080 Ti = 1) / 1.65 if TensorRT (FASSD-Net Sec. IV-F); "
          "'~' marks a spec-based factor estimate")
    return EXIT_OK
