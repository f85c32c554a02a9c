"""``nrdfer flops``: parameter count and GMACs of one clip, true and in the paper's convention.

Reads the ``model`` section of params.yaml (with ``-S`` overrides, e.g. ``-S model.M=3``;
outside a project the package's defaults); the
counting itself is :func:`nrdfer.models.flops.model_cost` (see that module for the two
conventions). The model is built on the ``meta`` device, so this is fast and needs no memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from nrdfer.commands import add_params_options, params_from_args
from nrdfer.errors import UserError
from nrdfer.params import MODELS


def configure(parser: argparse.ArgumentParser) -> None:
    add_params_options(parser)
    parser.add_argument(
        "--model", metavar="NAME", help="count this registered model instead of model.name"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON with keys params, gmacs, gmacs_paper"
    )


def run(args: argparse.Namespace) -> int:
    from nrdfer.models.flops import model_cost

    params = params_from_args(args, ["model"])["model"]
    if args.model and args.model not in MODELS:
        raise UserError(f"unknown model '{args.model}' (--model); known: {', '.join(MODELS)}")
    if args.model:
        params = dataclasses.replace(params, name=args.model)
    cost = model_cost(params).as_dict()
    if args.json:
        print(json.dumps(cost, indent=2))
        return 0
    clip = f"1 x {params.frames} x 3 x {params.image_size} x {params.image_size}"
    layers = f" (M={params.M}, N={params.N})" if params.name == "nrdfernet" else ""
    print(f"model            {params.name}{layers}, one clip {clip}")
    print(f"parameters       {cost['params']:,} ({cost['params'] / 1e6:.2f} M)")
    print(f"GMACs (true)     {cost['gmacs']:.3f}")
    print(f"GMACs (paper)    {cost['gmacs_paper']:.3f}  (thop convention, paper Tables 3-5)")
    return 0
