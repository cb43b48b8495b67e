"""The ``edge-lsh`` command line: one module per subcommand, each with ``add_parser(sub)`` that
registers it and sets ``func``, the function that runs it.

    train    cli/train.py     train a float network, or continue one (--from: float fine-tuning)
    finetune cli/finetune.py  fine-tune an .elsh model in fixed point (the device's trainer)
    eval     cli/eval.py      accuracy and cost of a float model or an .elsh file
    demo     cli/demo.py      LSH against dense on the bundled digits, then in int8
    export   cli/export.py    quantize to fixed point, write an .elsh file
    run      cli/run.py       classify a file's rows with an .elsh model
    inspect  cli/inspect.py   an .elsh file's layers, hashing and sections
    deploy   cli/deploy.py    cross-compile for a Raspberry Pi or a Pico 2, check under QEMU
    import   cli/import_model.py   a dense MLP from ONNX or TFLite, fine-tuned with LSH
    bench    cli/bench.py     an .elsh model against dense kernels and LiteRT, in one run

Every error a user can cause (edge_lsh.errors.EdgeLshError, and the ValueErrors of bad
arguments) ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from edge_lsh._version import __version__
from edge_lsh.cli import (
    bench,
    demo,
    deploy,
    energy,
    export,
    finetune,
    import_model,
    inspect,
    run,
    train,
)
from edge_lsh.cli import eval as eval_
from edge_lsh.cli.common import HelpFormatter
from edge_lsh.data import SPEC_HELP
from edge_lsh.errors import EdgeLshError

SUBCOMMANDS = (
    train,
    finetune,
    eval_,
    demo,
    export,
    run,
    inspect,
    deploy,
    import_model,
    bench,
    energy,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-lsh",
        description="Hashing-based sparse neural networks: train, evaluate, compare with dense, "
        "export to fixed point and deploy to a Raspberry Pi or a Pico 2.",
        epilog=SPEC_HELP,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edge-lsh {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"edge-lsh: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    args = build_parser().parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
        return status
    except BrokenPipeError:
        # the reader of stdout went away (`edge-lsh inspect m.elsh | head -1`): stop quietly
        # with 141 = 128 + SIGPIPE, the status a C tool killed by SIGPIPE gives a shell; stdout
        # goes to /dev/null so that Python's flush at exit cannot fail again (Python docs,
        # "Note on SIGPIPE")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    except (EdgeLshError, ValueError, FloatingPointError) as exc:
        print(f"edge-lsh: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-lsh: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
