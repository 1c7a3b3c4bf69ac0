"""Accuracy-evaluation throughput on the CPU at Cityscapes' full 1024x2048, and what the metric
costs beside the forward alone (target: metric overhead < 5% of the forward).

A generated Cityscapes tree (flat-colour blocks, the real layout) is evaluated with ``evaluate``;
the forward, the image/label decoding + preprocessing (float64, as ptsemseg), and the rest -- the
metric: logits upsampled to the label size where they differ, argmax, confusion matrix -- are
timed separately in the same pass.

    python benchmarks/eval_throughput.py [--model fassd_net] [--images 4] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _fixtures import make_cityscapes  # noqa: E402

from benchbench import create_model, model_card  # noqa: E402
from benchbench.accuracy import EvalConfig, evaluate, open_dataset  # noqa: E402

evaluate_module = sys.modules["benchbench.accuracy.evaluate"]
from benchbench.zoo._preprocess import PREPROCESSING  # noqa: E402


class Timed:
    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args):
            t0 = time.perf_counter()
            out = fn(*args)
            self.seconds += time.perf_counter() - t0
            return out
        return timed


def run(model_name: str, n_images: int, size, eval_at: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_cityscapes(Path(tmp), cities=("bench",), per_city=n_images, size=(1024, 2048))
        dataset = open_dataset("cityscapes", root, "val")
        model = create_model(model_name).eval()
        forward, reading = Timed(), Timed()
        dataset.read_image = reading.wrap(dataset.read_image)
        dataset.read_label = reading.wrap(dataset.read_label)
        original = evaluate_module.preprocess_image
        evaluate_module.preprocess_image = reading.wrap(original)

        @forward.wrap
        def predict(x):
            with torch.inference_mode():
                return model(x)

        predict(torch.zeros(1, 3, *size))                # warm-up
        forward.seconds = 0.0
        t0 = time.perf_counter()
        result = evaluate(predict, dataset, size, PREPROCESSING[model_card(model_name).preprocess],
                          EvalConfig(eval_at=eval_at))
        total = time.perf_counter() - t0
        evaluate_module.preprocess_image = original
    metric = total - forward.seconds - reading.seconds
    return {"size": f"{size[0]}x{size[1]}", "eval_at": eval_at, "images": result.n_images,
            "images_per_s": result.n_images / total, "forward_s": forward.seconds,
            "read_preprocess_s": reading.seconds, "metric_s": metric,
            "metric_overhead_pct": 100 * metric / forward.seconds}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="fassd_net")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.model}, {args.images} generated 1024x2048 images, {args.threads} threads")
    for size, eval_at in (((1024, 2048), "full"), ((512, 1024), "full"), ((512, 1024), "input")):
        r = run(args.model, args.images, size, eval_at)
        print(f"input {r['size']:>9s} eval_at={r['eval_at']:5s}: {r['images_per_s']:.2f} img/s; "
              f"forward {r['forward_s']:.2f} s, read+preprocess {r['read_preprocess_s']:.2f} s, "
              f"metric {r['metric_s']:.3f} s = {r['metric_overhead_pct']:.1f}% of the forward")


if __name__ == "__main__":
    main()
