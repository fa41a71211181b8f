"""The interactive API docs, served from files installed with the package: Swagger UI 5 (it
reads OpenAPI 3.1) from the pinned swagger-ui-py wheel, so the page works on a host with no
internet (an air-gapped hospital) and no request leaves it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from service.api import contract

SCHEMA = "/schema"
ASSETS = f"{SCHEMA}/assets"


def _installed_assets() -> Path:
    """swagger-ui-py's static folder, found without importing the package (whose handlers
    are for other frameworks)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: make install")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def openapi_config() -> OpenAPIConfig:
    """/schema and /schema/swagger: Swagger UI; /schema/openapi.json: the document."""
    swagger = SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        # Litestar's default favicon is on a CDN.
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
        path="/swagger",
    )
    return OpenAPIConfig(title="NileCare Payments", version="1.0.0", path=SCHEMA,
                         render_plugins=[swagger], components=contract.components(),
                         use_handler_docstrings=False)


def assets() -> Router:
    """Swagger UI's scripts, styles and icons, from the installed wheel."""
    return create_static_files_router(path=ASSETS, directories=[_installed_assets()],
                                      include_in_schema=False)
