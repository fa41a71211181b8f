"""env.example's provider credentials, written from the provider catalogue.

The rest of env.example is prose for people; the block between its two markers is the
catalogue's credential groups, rendered by `make render-env` and checked by
`make render-check-env`, so a new provider's variables cannot be forgotten there.
"""

from __future__ import annotations

from pathlib import Path

from infra.generated import command, header
from service.domain import catalog

DEFAULT_PATH = Path("env.example")
BEGIN = "# >>> provider credentials, " + header("service/domain/catalog.py")
END = "# <<< provider credentials"


def block(providers: tuple[catalog.ProviderSpec, ...] | None = None) -> str:
    """The provider block, markers included (default: the catalogue at call time)."""
    providers = catalog.PROVIDERS if providers is None else providers
    lines = [BEGIN]
    for group in catalog.credential_groups(providers):
        members = [p.code for p in providers if p.credentials == group]
        lines.append(f"# {group.label} ({', '.join(members)})")
        lines.extend(f"{name.upper()}=" for name in (group.api_key, group.api_secret,
                                                        group.merchant_id, group.api_url))
    manual = [p.code for p in providers if p.credentials is None]
    if manual:
        lines.append(f"# {', '.join(manual)}: no credentials (finance staff verify them).")
    lines.append(END)
    return "\n".join(lines)


def render(text: str, providers: tuple[catalog.ProviderSpec, ...] | None = None) -> str:
    """`text` (env.example) with its provider block rewritten."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("# >>> provider credentials")]
    ends = [i for i, line in enumerate(lines) if line == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"env.example needs one '{BEGIN[:28]}…' line and one '{END}' line "
                         "after it")
    kept = [*lines[:starts[0]], block(providers), *lines[ends[0] + 1:]]
    return "\n".join(kept) + "\n"


def main(argv: list[str] | None = None) -> int:
    return command(argv, __doc__, DEFAULT_PATH,
                   lambda path: render(path.read_text(encoding="utf-8")), "render-env")


if __name__ == "__main__":
    raise SystemExit(main())
