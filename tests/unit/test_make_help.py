"""`make help` lists every target the Makefile and mk/*.mk declare, each with its description,
and nothing that is not a target."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULE = re.compile(r"^([^\s:=#][^:=#]*?)\s*::?(?![=])")
HELP_LINE = re.compile(r"^  (\S+)\s+(\S.*)$")


def declared_targets(makefiles: list[Path]) -> set[str]:
    """The .PHONY targets and every rule named literally (a stamp file named through a variable,
    such as $(VENV_STAMP), and pattern rules are internal)."""
    targets: set[str] = set()
    for makefile in makefiles:
        text = makefile.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if line.startswith("\t"):
                continue  # a recipe
            if line.startswith(".PHONY:"):
                targets.update(line.split(":", 1)[1].split())
                continue
            rule = RULE.match(line)
            if rule:
                targets.update(name for name in rule.group(1).split()
                               if not name.startswith(".") and "$" not in name and "%" not in name)
    return targets


def help_listing() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    out = subprocess.run(["make", "-s", "--no-print-directory", "help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    listed: dict[str, str] = {}
    for line in out.splitlines():
        found = HELP_LINE.match(line)
        assert found, f"`make help` printed a line that is not `  target  description`: {line!r}"
        assert found.group(1) not in listed, f"{found.group(1)} is listed twice"
        listed[found.group(1)] = found.group(2)
    return listed


def test_make_help_lists_every_target_with_a_description() -> None:
    makefiles = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
    declared = declared_targets(makefiles)
    assert {"help", "run", "test", "render", "drill", "e2e-containers"} <= declared
    listed = help_listing()
    undocumented = sorted(declared - listed.keys())
    assert not undocumented, f"targets without a `## ` line above them: {undocumented}"
    not_targets = sorted(listed.keys() - declared)
    assert not not_targets, f"`make help` lists names that are no target: {not_targets}"


def test_the_declared_targets_are_read_from_the_makefiles(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "X := 1\n.PHONY: a \\\n  b\n\n## A\na: b\n\techo a: b\n$(STAMP): x\n%.o: %.c\n"
        "c d:: e # comment\nPY ?= python\n")
    assert declared_targets([makefile]) == {"a", "b", "c", "d"}
