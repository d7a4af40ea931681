"""``python -m research.gan {train,sample,evaluate,ablation}``: thin command-line entry point."""
from __future__ import annotations

import argparse
import importlib

COMMANDS = {
    "train": ("research.gan.train", "train the conditional GAN on the real slices"),
    "sample": ("research.gan.sample", "write generated slices, one folder per class"),
    "evaluate": ("research.gan.quality", "per-class FID/KID, classifier agreement, copy check"),
    "ablation": ("research.gan.ablation", "train the classifier with and without GAN images"),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.gan", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        sp = sub.add_parser(name, help=help_text, description=mod.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sp)
        sp.set_defaults(_module=mod)
    args = p.parse_args(argv)
    return int(args._module.main(args))


if __name__ == "__main__":
    raise SystemExit(main())
