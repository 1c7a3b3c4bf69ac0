"""``bench literature``: every row of the seed papers' comparison tables."""
from __future__ import annotations

from ._common import EXIT_OK, emit


def add_parser(sub) -> None:
    lit = sub.add_parser("literature", help="the seed papers' published results")
    lit.add_argument("--dataset", choices=["cityscapes", "camvid"])
    lit.add_argument("--json", action="store_true")


COLUMNS = ("method", "dataset", "split", "input_h", "input_w", "gpu_printed", "tensorrt",
           "params_m", "gflops", "fps", "fps_norm", "miou_val", "miou_test", "source")
JSON_COLUMNS = COLUMNS + ("fps_norm_estimate", "note", "fps_text", "fps_norm_printed",
                          "precision", "gpu")


def run(args) -> int:
    from ..normalize import literature_rows

    rows = literature_rows(args.dataset)
    if args.json:
        emit([{k: r[k] for k in JSON_COLUMNS} for r in rows])
        return EXIT_OK
    table = [[_cell(r, k) for k in COLUMNS] for r in rows]
    widths = [max(len(k), *(len(row[i]) for row in table)) for i, k in enumerate(COLUMNS)]
    for line in [list(COLUMNS)] + table:
        print("  ".join(v.ljust(w) if i in (0, 1, 2, 5, 13) else v.rjust(w)
                        for i, (v, w) in enumerate(zip(line, widths))).rstrip())
    print("fps_norm = fps / GPU factor (1080 Ti = 1) / 1.65 if TensorRT (FASSD-Net Sec. IV-F); "
          "'~' marks a spec-based factor estimate")
    return EXIT_OK


def _cell(row: dict, key: str) -> str:
    value = row[key]
    if value is None:
        return "-"
    if key == "fps_norm":
        return f"{value:.1f}{'~' if row['fps_norm_estimate'] else ''}"
    if key == "tensorrt":
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
