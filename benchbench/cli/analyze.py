"""``bench analyze MODEL --size HxW``: params, GFLOPs, MACs, CIO, MoC."""
from __future__ import annotations

from ..errors import UsageError
from ._common import (EXIT_OK, add_plugin_flag, emit, load_cli_plugins, parse_model_args,
                      parse_size)


def add_parser(sub) -> None:
    ana = sub.add_parser("analyze", help="params, GFLOPs, MACs, CIO, MoC of a model")
    ana.add_argument("model")
    ana.add_argument("--size", action="append", required=True, metavar="HxW")
    ana.add_argument("--batch", type=int, default=1)
    ana.add_argument("--num-classes", type=int, default=19)
    ana.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                     help="model argument, e.g. --arg alpha=4")
    ana.add_argument("--json", action="store_true")
    add_plugin_flag(ana)


def run(args) -> int:
    from ..analysis import analyze
    from ..zoo import model_card

    load_cli_plugins(args)
    card = model_card(args.model)  # unknown name -> one clear line
    if args.batch <= 0 or args.num_classes <= 0:
        raise UsageError("--batch and --num-classes must be positive")
    kwargs = dict(card.check_args(parse_model_args(args.arg)), num_classes=args.num_classes)
    sizes = [parse_size(s) for s in args.size]
    for h, w in sizes:
        card.check_size(h, w)          # the same rules as suites
    results = [analyze(args.model, size, args.batch, **kwargs) for size in sizes]
    if args.json:
        emit([r.as_dict() for r in results])
        return EXIT_OK
    for r in results:
        h, w = r.input_hw
        print(f"{r.model} @ {h}x{w} (batch {r.batch})")
        print(f"  params              {r.params:,}")
        print(f"  GFLOPs (papers')    {r.gflops:.1f}  ({r.gflops:.3f}; MACs by 2020 ptflops hooks)")
        print(f"  MACs (fvcore)       {r.macs:,}  ({r.macs / 1e9:.3f} G)")
        print(f"  conv MACs           {r.conv_macs:,}")
        print(f"  CIO                 {r.cio:,}  (FASSD eq. 2, elements)")
        print(f"  MoC                 {r.moc:.2f}  (conv MACs / CIO, FASSD eq. 1)")
        print(f"  peak activations    {r.peak_activation_mb:,.1f} MiB (fp32)")
        if model_card(args.model).family == "jetseg":
            print(f"  JetSeg's own formula {r.macs_jetseg_formula / 1e9:.4f} G (its eq. 2)")
        unsupported = ", ".join(f"{k} x{v}" for k, v in sorted(r.unsupported_ops.items()))
        print(f"  not counted by fvcore: {unsupported or 'none'}")
    return EXIT_OK
