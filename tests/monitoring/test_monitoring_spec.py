"""The spec loader: versioned, typed, and every error names the field and its position."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from infra.monitoring.spec import SpecError, parse


def _text(root: Path) -> str:
    return (root / "monitoring/thresholds.yaml").read_text()


def test_the_committed_spec_holds_the_design_table(root: Path) -> None:
    spec = parse(_text(root))
    table = {(a.signal, a.op, a.threshold, a.severity) for a in spec.alerts}
    assert table == {
        ("payment_failure_rate", ">", Decimal("0.1"), "critical"),
        ("gateway_up", "<", Decimal(1), "critical"),
        ("database_up", "<", Decimal(1), "critical"),
        ("provider_up", "<", Decimal(1), "critical"),
        ("pending_verifications", ">", Decimal(100), "high"),
        ("provider_success_rate", "<", Decimal("0.9"), "high"),
        ("processing_time", ">", Decimal(60), "high"),
        ("reconciliation_issues", ">", Decimal(50), "medium"),
    }
    assert spec.slo.objective == Decimal("0.995")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("version: nilecare.monitoring/v1", "version: nilecare.monitoring/v9",
     r"thresholds.yaml:\d+:\d+: version: 'nilecare.monitoring/v9' is not a supported version"),
    ("    threshold: 100\n", "    threshold: lots\n",
     r":\d+:\d+: alerts\[4\]\.threshold: 'lots' is not a number"),
    ("    threshold: 0.9\n", "    threshold: 90\n",
     r"alerts\[5\]\.threshold: 90 is a ratio threshold and must be between 0 and 1"),
    ("    for: 10m\n    severity: high", "    for: ten minutes\n    severity: high",
     r"alerts\[4\]\.for: 'ten minutes' is not a duration"),
    ("    severity: medium\n    service: payment-reconciliation",
     "    severity: urgent\n    service: payment-reconciliation",
     r"alerts\[7\]\.severity: 'urgent' is not one of critical, high, medium"),
    ("    op: \">\"\n    threshold: 100", "    op: \">\"\n    threshhold: 100",
     r"alerts\[4\]\.threshhold: unknown field"),
    ("  objective: 0.995", "  objective: 99.5", r"slo\.objective: 99\.5 must be between 0 and 1"),
])
def test_errors_name_the_field_and_position(root: Path, old: str, new: str, message: str) -> None:
    text = _text(root)
    assert old in text
    with pytest.raises(SpecError, match=message):
        parse(text.replace(old, new, 1), "thresholds.yaml")


def test_error_line_number_points_at_the_bad_value(root: Path) -> None:
    text = _text(root).replace("    threshold: 50\n", "    threshold: fifty\n")
    line = text.splitlines().index("    threshold: fifty") + 1
    with pytest.raises(SpecError, match=rf"thresholds.yaml:{line}:16: "):
        parse(text, "thresholds.yaml")


def test_empty_and_duplicate_specs_are_rejected(root: Path) -> None:
    with pytest.raises(SpecError, match="empty"):
        parse("", "t.yaml")
    text = _text(root).replace("name: PendingVerificationsHigh", "name: PaymentGatewayDown")
    with pytest.raises(SpecError, match="'PaymentGatewayDown' is used more than once"):
        parse(text)
