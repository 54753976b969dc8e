"""The FastAPI app: /api/v1 routers, the explorer page at /, plotly.js and the docs'
assets served locally (nothing is fetched from a CDN)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.requests import ClientDisconnect

from .. import __version__
from ..contract.schemas import JacobianRequest, RunRequest
from ..models.store import ModelStore
from ..settings import Settings
from .body_limit import BodyLimit
from .guard import Guard
from .pool import BusyError, ClientGoneError, ComputePool
from .routers import health, models, run

API = "/api/v1"
# the explorer page: shipped inside an installed wheel, or the checkout's frontend/
FRONTEND = next((d for d in (Path(str(files("gatescope"))) / "frontend",
                             Path(__file__).resolve().parents[3] / "frontend") if d.is_dir()),
                None)
PLOTLY_JS = Path(str(files("plotly"))) / "package_data" / "plotly.min.js"
DOCS_ASSETS = Path(str(files("fastapi_offline"))) / "static"
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.compute = ComputePool(settings.compute_processes, settings.data_dir,
                                        settings.limits, settings.presets_dir,
                                        settings.max_queue, settings.store_options,
                                        settings.max_sending_bytes)
        await app.state.compute.warm_up()
        yield
        app.state.compute.shutdown()

    app = FastAPI(title="gatescope", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Every gate, state and gradient of an RNN, LSTM or GRU, step by "
                  "step, exactly as PyTorch computes them. The contract, with every field, "
                  "encoding, error and limit: docs/API.md in gatescope's repository.")
    app.state.settings = settings
    app.state.store = ModelStore(settings.data_dir, settings.limits, settings.presets_dir,
                                 **settings.store_options)

    api = APIRouter(prefix=API)
    for module in (health, run, models):
        api.include_router(module.router)
    app.include_router(api)

    @app.exception_handler(ClientDisconnect)
    @app.exception_handler(ClientGoneError)
    async def gone(request: Request, exc: Exception) -> Response:
        """The client went while its body was being read (ClientDisconnect), or before its
        answer was ready (ClientGoneError: its work dropped or stopped): nothing to answer,
        nothing to log but the access line."""
        return Response(status_code=499)

    @app.exception_handler(BusyError)
    async def busy(request: Request, exc: BusyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503,
                            headers={"retry-after": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    _add_docs(app)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        """plotly.js from the installed plotly package: the page works offline."""
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})

    # the last added is the outermost: CORS, then the body limit, then the guard
    app.add_middleware(Guard, settings=settings, routes=app.routes, api=API)
    app.add_middleware(BodyLimit, limit_for=lambda path: (
        settings.max_upload_bytes + 2**20 if path.startswith(f"{API}/models")
        else settings.max_body_bytes))
    if settings.cors_origins:  # added last, so it is outermost: its headers reach 413s too
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"])

    frontend = settings.frontend_dir or FRONTEND
    if frontend is not None and frontend.is_dir():
        app.mount("/", StaticFiles(directory=frontend, html=True), name="frontend")
    else:
        log.warning("no explorer page to serve (looked for %s); the API still answers",
                    frontend or "gatescope/frontend in the package and the checkout's frontend/")
    return app


def _add_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc with their assets served from the fastapi-offline package, and
    an OpenAPI document that carries the request models (the body is parsed in a worker,
    so FastAPI does not see them on its own)."""
    app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="gatescope API",
                                   swagger_js_url="/static/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static/docs/swagger-ui.css",
                                   swagger_favicon_url="/static/docs/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="gatescope API",
                              redoc_js_url="/static/docs/redoc.standalone.js",
                              redoc_favicon_url="/static/docs/favicon.png",
                              with_google_fonts=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            _, defs = models_json_schema(
                [(RunRequest, "validation"), (JacobianRequest, "validation")],
                ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                defs["$defs"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
