"""Which database errors mean "not now", and the breaker that remembers them (no I/O)."""

from __future__ import annotations

import pymysql
import pytest
from sqlalchemy import exc as sa_exc

from service.db.availability import Breaker, is_unavailable
from service.errors import Unavailable


def _operational(code: int, message: str) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, message))


@pytest.mark.parametrize(("error", "expected"), [
    (_operational(2003, "Can't connect to MySQL server"), True),
    (_operational(2013, "Lost connection to MySQL server during query (timed out)"), True),
    (_operational(1205, "Lock wait timeout exceeded"), True),
    (_operational(1213, "Deadlock found"), True),
    (_operational(1644, "refunds would exceed the payment amount"), False),  # a trigger's no
    (sa_exc.IntegrityError("INSERT", {}, pymysql.err.IntegrityError(1062, "Duplicate")), False),
    (sa_exc.TimeoutError("QueuePool limit reached"), True),
    (ValueError("not a database error"), False),
])
def test_only_errors_that_mean_not_now_are_unavailable(error: Exception, expected: bool) -> None:
    assert is_unavailable(error) is expected


def test_the_breaker_answers_at_once_for_its_hold_then_lets_a_request_try() -> None:
    now = [100.0]
    breaker = Breaker(hold=2.0, clock=lambda: now[0])
    breaker.check()  # closed: nothing raised
    breaker.trip()
    with pytest.raises(Unavailable) as raised:
        breaker.check()
    assert raised.value.status == 503 and raised.value.retry_after == 5
    now[0] += 2.1
    breaker.check()
    breaker.trip()
    breaker.close()  # a readiness probe reached the database
    breaker.check()
