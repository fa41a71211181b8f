"""Every link in the repository's Markdown, and every alert's runbook URL, leads somewhere that
exists: a file inside the repository and, when it names one, a heading or anchor in it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import yaml

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", "var", "node_modules", "build", "dist", "secrets"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]"  # [text], which may hold [brackets]
    r"\(\s*<?([^()\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")  # (target "title")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t].*)?$", re.MULTILINE)
HTML_TARGET = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]*)\"", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"<[a-z]+\b[^>]*?\b(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
BLOB_URL = re.compile(r"^https://github\.com/[^/]+/[^/]+/blob/[^/]+/([^#]+)#(.+)$")


def markdown_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith(".")
                         and not d.endswith(".egg-info"))
        found += [Path(folder, f) for f in sorted(files) if f.endswith(".md")]
    return found


def outside_fences(text: str) -> Iterator[tuple[int, str]]:
    """The numbered lines that are not inside a fenced code block."""
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
        elif opened:
            fence = opened.group(1)
        else:
            yield number, line


def prose(text: str) -> Iterator[tuple[int, str]]:
    """The lines outside code blocks, with inline code spans blanked out."""
    for number, line in outside_fences(text):
        yield number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped,
    spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The fragments a page answers to: its headings' slugs (a repeated heading gets -1, -2 …,
    as on GitHub) and the ids of its HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in outside_fences(text):
        found |= set(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """Each link target with the number of the line it starts on; a link's text may run over
    a line break, its target may not."""
    lines = text.splitlines()
    kept = dict(prose(text))
    body = "\n".join(kept.get(number, "") for number in range(1, len(lines) + 1))
    return sorted((body.count("\n", 0, found.start()) + 1, found.group(1))
                  for pattern in (INLINE_LINK, REFERENCE, HTML_TARGET)
                  for found in pattern.finditer(body))


def check_target(root: Path, source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, leads nowhere (None when it resolves)."""
    if SCHEME.match(target):
        return None if target.lower().startswith(("http://", "https://", "mailto:")) else (
            "is neither a relative link nor http(s)")
    path, _, fragment = target.partition("#")
    path = unquote(path)
    base = root if path.startswith("/") else source.parent
    resolved = Path(os.path.normpath(base / path.lstrip("/"))) if path else source
    if resolved != root and root not in resolved.parents:
        return "leaves the repository"
    if not resolved.exists():
        return f"names {resolved.relative_to(root)}, which does not exist"
    if fragment and resolved.suffix == ".md" and unquote(fragment) not in anchors(
            resolved.read_text(encoding="utf-8")):
        return f"names #{fragment}, which {resolved.relative_to(root)} has no heading for"
    return None


def broken_links(root: Path) -> list[str]:
    problems = []
    for source in markdown_files(root):
        for number, target in links(source.read_text(encoding="utf-8")):
            why = check_target(root, source, target)
            if why:
                problems.append(f"{source.relative_to(root)}:{number}: ({target}) {why}")
    return problems


def runbook_urls(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "runbook_url" and isinstance(value, str):
                yield value
            else:
                yield from runbook_urls(value)
    elif isinstance(node, list):
        for item in node:
            yield from runbook_urls(item)


def test_every_link_in_the_docs_resolves() -> None:
    assert markdown_files(ROOT)[0] == ROOT / "README.md"
    assert broken_links(ROOT) == []


def test_every_alert_runbook_url_names_a_runbook_section() -> None:
    rule_files = sorted((ROOT / "monitoring/rules").rglob("*.yml"))
    urls = {url for f in rule_files for url in runbook_urls(yaml.safe_load(f.read_text()))}
    assert len(urls) >= 15  # one per alert; none may be lost from the generated rules
    runbook = anchors((ROOT / "docs/operators/runbook.md").read_text(encoding="utf-8"))
    for url in sorted(urls):
        parts = BLOB_URL.match(url)
        assert parts, f"{url} is not a link into this repository's files"
        assert parts.group(1) == "docs/operators/runbook.md", url
        assert parts.group(2) in runbook, f"{url}: the runbook has no such section"


def test_every_docs_page_starts_with_a_title() -> None:
    for page in markdown_files(ROOT / "docs"):
        first = page.read_text(encoding="utf-8").split("\n", 1)[0]
        assert re.fullmatch(r"# \S.*", first), f"{page.relative_to(ROOT)}: {first!r}"


def test_the_checker_finds_each_kind_of_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text(
        "# A page\n\n## Read an alert — critical, `PagerDuty`\n\n<a id=\"x-y\"></a>\n")
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "[fine](docs/a.md) [fine](docs/a.md#read-an-alert--critical-pagerduty) [fine](#top)\n"
        "[fine](docs/a.md#x-y) [fine](https://example.org/nowhere)\n"
        "`[in code](gone.md)`\n```\n[in a block](gone.md)\n```\n"
        "[gone](docs/b.md)\n"
        "[no anchor](docs/a.md#read-an-alert)\n"
        "[escapes](../outside.md)\n"
        "[ref]: docs/c.md\n"
        "[split over\ntwo lines](docs/d.md)\n")
    assert broken_links(tmp_path) == [
        "README.md:9: (docs/b.md) names docs/b.md, which does not exist",
        "README.md:10: (docs/a.md#read-an-alert) names #read-an-alert, which docs/a.md has no "
        "heading for",
        "README.md:11: (../outside.md) leaves the repository",
        "README.md:12: (docs/c.md) names docs/c.md, which does not exist",
        "README.md:13: (docs/d.md) names docs/d.md, which does not exist",
    ]
