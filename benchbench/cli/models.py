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
    for n in names:
        card = model_card(n)
        exact = f"{card.official_params:,}" if card.official_params else "-"
        print(f"{n:22s} {card.family:16s} official params {exact:>10s}  {card.paper}")
    return EXIT_OK
