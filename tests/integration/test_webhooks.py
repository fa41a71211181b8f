"""Webhooks that pass the signature check but are not events we can act on: each is a 4xx
problem naming what is wrong, recorded as rejected, and changes nothing. A fuzz of signed
bodies finds no 5xx."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import create_engine, func, select, text

from service.api.app import create_app
from service.db import migrate
from service.db.models import PaymentAttempt, PaymentWebhook
from service.providers import signing
from service.settings import Settings, load
from tests.conftest import TEST_WEBHOOK_SECRET, base_environ
from tests.integration.test_api import auth, body, control
from tests.servers import free_port
from tests.simulator import running_simulator

URL = "/api/v1/webhooks/zain_cash"


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory, mysql_server: str,
         ) -> Iterator[tuple[TestClient[Any], dict[str, Any], Callable[[], dict[str, int]]]]:
    """A gateway with one confirmed zain_cash payment, and a reader of what changed."""
    name = "nc_webhooks"
    admin = create_engine(mysql_server)
    with admin.begin() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(text(f"CREATE DATABASE {name}"))
    url = f"{mysql_server}/{name}"
    engine = create_engine(url)
    migrate.prepare(engine)
    with running_simulator(load(base_environ())) as sim:
        settings: Settings = load(base_environ(
            DATABASE_URL=url, PROVIDER_SIMULATOR_URL=sim, RATE_LIMIT_PER_MINUTE="100000",
            DATA_DIR=str(tmp_path_factory.mktemp("d")),
            GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{free_port()}"))
        control(sim, "zain_cash", settle_after_seconds=0)
        with TestClient(create_app(settings)) as client:
            payment = client.post("/api/v1/payments", json=body(), headers=auth()).json()
            assert payment["status"] == "confirmed"

            def state() -> dict[str, int]:
                with engine.connect() as c:
                    return {
                        "status_calls": int(c.execute(select(func.count()).select_from(
                            PaymentAttempt).where(PaymentAttempt.operation == "status"))
                            .scalar_one()),
                        "accepted": int(c.execute(select(func.count()).select_from(
                            PaymentWebhook).where(PaymentWebhook.result == "received"))
                            .scalar_one()),
                    }

            yield client, payment, state
    engine.dispose()
    with admin.begin() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


def _post(client: TestClient[Any], raw: bytes,
          content_type: str | None = "application/json") -> Any:
    headers = {signing.HEADER: signing.sign(TEST_WEBHOOK_SECRET, raw, int(time.time()))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(URL, content=raw, headers=headers)


def _event(reference: Any, **changes: Any) -> dict[str, Any]:
    return {"id": f"evt-{time.monotonic_ns()}", "type": "payment.succeeded",
            "data": {"reference": reference}, **changes}


CASES: list[tuple[str, Callable[[str], bytes], str | None, int, str]] = [
    ("not utf-8", lambda ref: b'{"id": "e\xff"}', "application/json", 400, "body"),
    ("not json", lambda ref: b'{"id": ', "application/json", 400, "body"),
    ("an array", lambda ref: b"[1, 2]", "application/json", 400, "body"),
    ("nested too deep", lambda ref: b"[" * 10_000 + b"]" * 10_000, "application/json", 400,
     "body"),
    ("text/plain", lambda ref: json.dumps(_event(ref)).encode(), "text/plain", 415,
     "Content-Type"),
    ("no content type", lambda ref: json.dumps(_event(ref)).encode(), None, 415,
     "Content-Type"),
    ("id too long", lambda ref: json.dumps(_event(ref, id="e" * 65)).encode(),
     "application/json", 422, "id"),
    ("id a number", lambda ref: json.dumps(_event(ref, id=7)).encode(), "application/json",
     422, "id"),
    ("type too long", lambda ref: json.dumps(_event(ref, type="t" * 65)).encode(),
     "application/json", 422, "type"),
    ("no data", lambda ref: json.dumps({"id": "e-1", "type": "x"}).encode(),
     "application/json", 422, "data"),
    ("reference too long", lambda ref: json.dumps(_event("R" * 41)).encode(),
     "application/json", 422, "data.reference"),
    ("reference a list", lambda ref: json.dumps(_event([ref])).encode(), "application/json",
     422, "data.reference"),
    ("unknown reference", lambda ref: json.dumps(_event("NC-NOT-OURS")).encode(),
     "application/json", 422, "data.reference"),
]


@pytest.mark.parametrize(("name", "make", "content_type", "status", "field"), CASES,
                         ids=[c[0] for c in CASES])
def test_a_signed_body_that_does_not_fit_is_refused_recorded_and_changes_nothing(
        hook: tuple[TestClient[Any], dict[str, Any], Callable[[], dict[str, int]]],
        name: str, make: Callable[[str], bytes], content_type: str | None, status: int,
        field: str) -> None:
    client, payment, state = hook
    before = state()
    raw = make(payment["reference"])
    reply = _post(client, raw, content_type)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["field"] == field
    assert state() == before  # no provider call, no accepted event
    engine = client.app.state["services"].ctx.engine
    with engine.connect() as c:  # this very body, recorded once as refused with its status
        recorded = c.execute(select(PaymentWebhook.result).where(
            PaymentWebhook.event_id == f"rejected:{hashlib.sha256(raw).hexdigest()[:48]}")).all()
    assert [r.result for r in recorded] == [f"rejected:{status}"]
    assert client.get(f"/api/v1/payments/{payment['id']}",
                      headers=auth()).json()["status"] == "confirmed"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=80),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
_fields = st.one_of(_json_values, st.text(min_size=60, max_size=70))


@st.composite
def _bodies(draw: st.DrawFn, reference: str) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["bytes", "json", "event"]))
    if kind == "bytes":
        raw = draw(st.binary(max_size=300))
    elif kind == "json":
        raw = json.dumps(draw(_json_values)).encode()
    else:
        data = draw(st.fixed_dictionaries(
            {}, optional={"reference": st.one_of(st.just(reference), _fields),
                          "status": _fields}))
        event = draw(st.fixed_dictionaries(
            {}, optional={"id": st.one_of(st.text(min_size=1, max_size=64), _fields),
                          "type": _fields, "data": st.one_of(st.just(data), _fields),
                          "created": _fields}))
        text = json.dumps(event, ensure_ascii=draw(st.booleans()))
        raw = text.encode(draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])),
                          errors="replace")
    content_type = draw(st.sampled_from(["application/json", "application/json; charset=utf-8",
                                         "text/plain", "application/json; charset=latin-1",
                                         None]))
    return raw, content_type


def test_a_thousand_signed_bodies_find_no_server_error(
        hook: tuple[TestClient[Any], dict[str, Any], Callable[[], dict[str, int]]]) -> None:
    client, payment, _state = hook
    seen: dict[int, int] = {}

    @settings(max_examples=1000, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_bodies(payment["reference"]))
    def post(case: tuple[bytes, str | None]) -> None:
        raw, content_type = case
        reply = _post(client, raw, content_type)
        seen[reply.status_code] = seen.get(reply.status_code, 0) + 1
        assert reply.status_code < 500, (raw[:200], reply.text)
        if reply.status_code >= 400:
            assert reply.headers["content-type"].startswith("application/problem+json")
            assert "field" in reply.json()

    post()
    assert sum(seen.values()) >= 1000
    assert {400, 415, 422} <= set(seen), seen  # the fuzz reached every kind of refusal
    assert client.get(f"/api/v1/payments/{payment['id']}",
                      headers=auth()).json()["status"] == "confirmed"
