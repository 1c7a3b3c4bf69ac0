"""``bench eval MODEL``: mIoU of one model on a dataset split."""
from __future__ import annotations

import math
import sys

from ..errors import UsageError
from ..limits import MAX_SCALE
from ._common import (EXIT_OK, add_plugin_flag, emit, load_cli_plugins, parse_model_args,
                      parse_size)


def add_parser(sub) -> None:
    ev = sub.add_parser("eval", help="mIoU of a model on Cityscapes or CamVid")
    ev.add_argument("model")
    ev.add_argument("--data", metavar="ROOT",
                    help="dataset root (Cityscapes: default $CITYSCAPES_DATASET)")
    ev.add_argument("--dataset", choices=["cityscapes", "camvid"], default="cityscapes")
    ev.add_argument("--split", default="val")
    ev.add_argument("--size", metavar="HxW", help="network input size (default: the images')")
    ev.add_argument("--weights", metavar="PATH", help="checkpoint (official layout or state dict)")
    ev.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE")
    ev.add_argument("--limit", type=int, metavar="N", help="first N images only")
    ev.add_argument("--eval-at", choices=["full", "input"], default="full",
                    help="compare at the label's full size (default) or at the input size")
    ev.add_argument("--scales", metavar="S,S,...", help="multi-scale evaluation, e.g. 0.75,1,1.25")
    ev.add_argument("--flip", action="store_true", help="add horizontally flipped inputs")
    ev.add_argument("--backend", default="eager")
    ev.add_argument("--precision", default="fp32")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev.add_argument("--save-predictions", metavar="DIR",
                    help="one PNG per image: Cityscapes label ids / CamVid class indices")
    ev.add_argument("--no-progress", action="store_true")
    ev.add_argument("--json", action="store_true")
    add_plugin_flag(ev)


def _parse_scales(text: str | None) -> tuple[float, ...]:
    if not text:
        return (1.0,)
    try:
        scales = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--scales {text!r}: expected numbers separated by commas") from None
    if not all(math.isfinite(s) and 0 < s <= MAX_SCALE for s in scales):
        raise UsageError(f"--scales {text!r}: scales must be positive finite numbers up to "
                         f"{MAX_SCALE:g}")
    return scales


def run(args) -> int:
    from ..accuracy.evaluate import EvalConfig
    from ..accuracy.standalone import EvalRequest, run_eval
    from ..zoo import model_card

    load_cli_plugins(args)
    model_card(args.model)
    cfg = EvalConfig(dataset=args.dataset, root=args.data, split=args.split, limit=args.limit,
                     eval_at=args.eval_at, scales=_parse_scales(args.scales), flip=args.flip)
    request = EvalRequest(
        model=args.model, config=cfg, size=parse_size(args.size) if args.size else None,
        weights=args.weights, model_args=tuple(parse_model_args(args.arg).items()),
        backend=args.backend, precision=args.precision, device=args.device,
        save_predictions=args.save_predictions)
    if not args.weights:
        print(f"bench: warning: no --weights; {args.model} is randomly initialised, its mIoU "
              f"means nothing", file=sys.stderr)
    bar = {}

    def start(n):
        from tqdm import tqdm
        bar["bar"] = tqdm(total=n, unit="img", disable=args.no_progress, file=sys.stderr)

    def step(n):
        bar["bar"].update(n)

    try:
        result, ran = run_eval(request, on_image=step, on_start=start)
    finally:
        if "bar" in bar:
            bar["bar"].close()
    if args.json:
        emit({**ran, **result.as_dict()})
        return EXIT_OK
    _print_eval(result, ran)
    return EXIT_OK


def _print_eval(result, ran) -> None:
    p = result.protocol
    h, w = result.size
    print(f"{ran['model']} on {p['dataset']} {p['split']} ({result.n_images} of "
          f"{p['images_in_split']} images, {result.n_pixels:,} pixels), input {h}x{w}, "
          f"{ran['backend']}-{ran['precision']} on {ran['device']}")
    print(f"  protocol: eval_at={result.eval_at} ({p['compare_at']}); preprocess "
          f"{p['preprocess']['name']}" + (f"; multi-scale {p['scales']} flip={p['flip']}"
                                           if result.multi_scale else ""))
    for name, iou in result.iou_per_class.items():
        print(f"  {name:16s} {'-' if iou is None else f'{iou:6.2f}':>6}")
    miou = "-" if result.miou is None else f"{result.miou:.2f}"
    acc = "-" if result.pixel_acc is None else f"{result.pixel_acc:.2f}"
    print(f"  mIoU {miou} %   pixel accuracy {acc} %"
          + ("   (multi-scale)" if result.multi_scale else ""))
    if result.nonfinite_images:
        print(f"  warning: {result.nonfinite_images} image(s) had non-finite logits "
              f"({ran['precision']} overflow?)")
