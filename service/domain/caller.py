"""Who is calling: the verified claims of a bearer token, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import Forbidden

FINANCE_ROLES = frozenset(
    {"super_admin", "hospital_admin", "accountant", "finance_manager", "billing_staff"}
)
ADMIN_ROLES = frozenset({"super_admin", "admin"})
KNOWN_ROLES = (
    FINANCE_ROLES
    | ADMIN_ROLES
    | {"cashier", "receptionist", "doctor", "nurse", "auditor", "patient"}
)
# Who may take a payment at a desk; patients and clinical staff may not.
CREATE_ROLES = FINANCE_ROLES | ADMIN_ROLES | {"cashier", "receptionist"}


@dataclass(frozen=True)
class Caller:
    subject: str
    roles: frozenset[str]
    facility_id: str | None

    @property
    def is_admin(self) -> bool:
        return bool(self.roles & ADMIN_ROLES)

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(self.roles & roles)

    def may_see(self, facility_id: str) -> bool:
        return self.is_admin or facility_id == self.facility_id


def require_finance(caller: Caller) -> None:
    if not caller.has_any(FINANCE_ROLES):
        raise Forbidden(
            "this action needs a finance role (" + ", ".join(sorted(FINANCE_ROLES)) + ")",
            field="roles",
        )
