"""The baseline the create benchmark divides by: a bare Litestar app on the same server."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get, post


@post("/echo", status_code=201)
async def echo(data: dict[str, Any]) -> dict[str, Any]:
    return data


@get("/item/{item_id:str}")
async def item(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "status": "confirmed", "amount": "150.00", "currency": "SDG"}


def app_factory() -> Litestar:
    return Litestar([echo, item], openapi_config=None)
