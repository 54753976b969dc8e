"""The REST service: `create_app(settings)` builds the FastAPI app (see app.py)."""

from .app import create_app

__all__ = ["create_app"]
