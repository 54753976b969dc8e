from __future__ import annotations

from fastapi import APIRouter

from ... import __version__
from ...contract.responses import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Answers at once, even while runs compute (they run in worker processes)."""
    return Health(status="ok", version=__version__)
