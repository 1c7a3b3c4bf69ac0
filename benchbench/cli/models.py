"""``bench models [PATTERN]``: the model registry."""
from __future__ import annotations

from ..errors import UsageError
from ._common import EXIT_OK, emit


def add_parser(sub) -> None:
    mods = sub.add_parser("models", help="list registered models")
    mods.add_argument("pattern", nargs="?", default="*",
                      help="a substring (fassd) or a glob (fassd_net_l*)")
    mods.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..zoo import list_models, model_card

    pattern = args.pattern if any(ch in args.pattern for ch in "*?[") else f"*{args.pattern}*"
    names = list_models(pattern)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r}; `bench models` lists them all")
    if args.json:
        emit([model_card(n).as_dict() for n in names])
        return EXIT_OK
    print(f"{'model':22s} {'family':16s} {'params (code)':>13s} {'params (paper)':>14s}  paper")
    for n in names:
        card = model_card(n)
        exact = f"{card.official_params:,}" if card.official_params else "-"
        print(f"{n:22s} {card.family:16s} {exact:>13s} {_printed_params(card):>14s}  {card.paper}")
    print("params (code): the exact count of the authors' code at 19 classes; params (paper): "
          "as the paper prints it; -: not published. `bench analyze MODEL` counts ours")
    return EXIT_OK


def _printed_params(card) -> str:
    """The paper's parameter count(s) for this model, as printed (e.g. ``15.3M``)."""
    values = sorted({r.params for r in card.reported if r.params})
    return ", ".join(_millions(v) for v in values) or "-"


def _millions(value: float) -> str:
    return f"{value / 1e6:g}M" if value >= 1e5 else f"{value / 1e3:g}K"
