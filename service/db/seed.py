"""Keep payment_providers equal to the provider catalogue (run after every migration)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.db.models import PaymentProvider
from service.domain import catalog


def sync_providers(session: Session) -> int:
    """Insert or update the twelve providers; returns how many rows changed."""
    existing = {p.code: p for p in session.scalars(select(PaymentProvider))}
    changed = 0
    now = utcnow()
    for spec in catalog.PROVIDERS:
        values = {
            "display_name": spec.display_name, "provider_type": spec.type.value,
            "currencies": ",".join(spec.currencies), "fee_percent": spec.fees.percent,
            "fee_fixed": spec.fees.fixed, "fee_min": spec.fees.minimum,
            "fee_max": spec.fees.maximum, "min_amount": spec.min_amount,
            "max_amount": spec.max_amount, "verification_type": spec.verification.value,
        }
        row = existing.get(spec.code)
        if row is None:
            session.add(PaymentProvider(code=spec.code, is_active=True, created_at=now,
                                        updated_at=now, **values))
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            changed += 1
    return changed
