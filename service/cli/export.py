"""``posesvc export``: a card's network as ONNX (dynamic batch axis), checked against torch.

Examples::

    posesvc export --card hrnet_w32_256x192_mmpose_dark            # into the export cache, as serve would
    posesvc export --card pose_resnet_50_128x96_darkpose --weights r50.pth --out r50.onnx

The export cache (``<weights dir>/exports``) is what the ``onnxruntime``, ``openvino`` and ``tensorrt``
backends load: a file is keyed by the card and a digest of the weights, and rebuilt when either changes or
when its bytes no longer match the recorded sha256.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .common import add_model_args, load_model_card, settings_from_args, untrained_warning


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a card's network to ONNX (dynamic batch) and check it against torch",
        description="Export the card's network (its weights, or seeded untrained ones with --allow-untrained) "
        "to ONNX with a dynamic batch axis, run it in ONNX Runtime next to torch on a random batch and print "
        "the max difference. Without --out the file goes to the export cache the backends use.",
    )
    add_model_args(p)
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    p.add_argument("--out", type=Path, help="also copy the exported file here")
    p.add_argument("--json", action="store_true", help="print the export record as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..backends.export import ExportSpec, cached_onnx
    from ..engine.factory import pose_weights
    from ..nets import build_net, load_checkpoint_file

    s = settings_from_args(args)
    card = load_model_card(s)
    weights = pose_weights(s, card, allow_untrained=s.allow_untrained)
    net = build_net(card.architecture, card.arch_params, seed_key=card.name)
    if weights is not None:
        load_checkpoint_file(net, weights, card.checkpoint.format)
    else:
        print(f"WARNING: {untrained_warning(card)}", file=sys.stderr)
    key = json.dumps({"architecture": card.architecture, "params": card.arch_params,
                      "input_size": list(card.input_size)}, sort_keys=True, default=str)  # fmt: skip
    try:
        import onnxruntime  # noqa: F401  (the check runs the file)
    except ImportError:
        raise InvalidInput("posesvc export checks the file with ONNX Runtime: pip install onnxruntime") from None
    path, meta = cached_onnx(net.eval(), ExportSpec(card.name, key, card.input_size, s.weights_dir / "exports"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.out)
        meta = {**meta, "copied_to": str(args.out)}
    meta = {**meta, "path": str(path), "trained": weights is not None}
    if args.json:
        print(json.dumps(meta, indent=2))
    else:
        print(f"{path}")
        if args.out is not None:
            print(f"copied to {args.out}")
        print(f"max |onnxruntime - torch| on a random batch of 3: {meta.get('max_diff', float('nan')):.3g}")
    return 0
