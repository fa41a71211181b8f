"""`python -m infra.monitoring render|check`: regenerate, or fail naming each drifted file.

`render --environment NAME --output DIR` (or `--overlay FILE`) renders the spec with an
overlay merged over it into another directory: how an operator or a test points the configs
at its own receivers, smarthost, secrets and targets without editing a generated file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.monitoring.render import SPEC_PATH, drift, render, write
from infra.monitoring.spec import SpecError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.monitoring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("render", "check"))
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="repository root (default: the current directory)")
    parser.add_argument("--environment", help="a name under `environments:` in the spec")
    parser.add_argument("--overlay", type=Path, action="append", default=[],
                        help="a YAML file merged over the spec (repeatable)")
    parser.add_argument("--output", type=Path,
                        help="where to write (default: the repository root)")
    args = parser.parse_args(argv)
    root: Path = args.root
    varied = args.environment is not None or bool(args.overlay)
    output: Path = args.output or root
    if varied and output.resolve() == root.resolve():
        print("error: an environment or overlay render needs --output outside the repository "
              "root; the committed files are the base spec's", file=sys.stderr)
        return 2
    try:
        files = render(load(root / SPEC_PATH, args.environment, args.overlay))
    except (SpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "render":
        for rel in write(files, output):
            print(f"wrote {rel}")
        return 0
    drifted = drift(files, output)
    for rel in drifted:
        print(f"drift: {rel}", file=sys.stderr)
    if drifted:
        print("run `make render` and commit the result", file=sys.stderr)
        return 1
    print(f"{len(files)} generated files match {SPEC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
