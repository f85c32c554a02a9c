"""The ``nrdfer`` command: everything that is not a pipeline stage.

Sub-commands are registered in :data:`COMMANDS` as ``name -> (module, one-line help)``. A
module is imported only when its sub-command runs (so ``nrdfer --help`` stays fast without
importing torch) and provides ``configure(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from nrdfer import __version__
from nrdfer.errors import INTERRUPTED, UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "params": ("nrdfer.commands.params", "check params.yaml and print the resolved values"),
    "synth": ("nrdfer.commands.synth", "generate the demo data set in DFEW/AFEW layouts"),
    "faces": ("nrdfer.commands.faces", "faces and landmarks in an image/video; aligned crop"),
    "flops": ("nrdfer.commands.flops", "parameters and GMACs of one clip (true and paper's)"),
    "predict": ("nrdfer.commands.predict", "the expression in any video, from a model file"),
    "export": ("nrdfer.commands.export", "ONNX export of a model file, checked with onnxruntime"),
    "preset": (
        "nrdfer.commands.preset",
        "a params preset (the paper's settings) as dvc exp run -S",
    ),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    parser = argparse.ArgumentParser(
        prog="nrdfer",
        description="NR-DFERNet: noise-robust dynamic facial expression recognition.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nRun 'nrdfer COMMAND --help' for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="nrdfer [--version] COMMAND [ARGS...]",
    )
    parser.add_argument("--version", action="version", version=f"nrdfer {__version__}")
    parser.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] not in COMMANDS:
        args = top.parse_args(argv[:1])  # handles --help/--version/unknown command
        top.print_help()
        return 0 if args.command is None and not argv else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"nrdfer {name}", description=COMMANDS[name][1])
    module.configure(parser)
    args = parser.parse_args(rest)
    try:
        status = int(module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except UserError as exc:
        print(f"nrdfer {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nrdfer {name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `nrdfer ... | head`: the reader has gone; nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        return 1


if __name__ == "__main__":
    sys.exit(main())
