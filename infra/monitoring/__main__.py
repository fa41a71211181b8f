"""`python -m infra.monitoring render|check`: regenerate, or fail naming each drifted file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.monitoring.render import SPEC_PATH, drift, render, write
from infra.monitoring.spec import SpecError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.monitoring", description=__doc__)
    parser.add_argument("command", choices=("render", "check"))
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="repository root (default: the current directory)")
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        files = render(load(root / SPEC_PATH))
    except (SpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "render":
        for rel in write(files, root):
            print(f"wrote {rel}")
        return 0
    drifted = drift(files, root)
    for rel in drifted:
        print(f"drift: {rel}", file=sys.stderr)
    if drifted:
        print("run `make render` and commit the result", file=sys.stderr)
        return 1
    print(f"{len(files)} generated files match {SPEC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
