"""FastAPI dependencies: the settings, the model store and the compute pool of the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..models.store import ModelStore
from ..settings import Settings
from .pool import ComputePool


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ModelStore:
    return request.app.state.store


def get_compute(request: Request) -> ComputePool:
    return request.app.state.compute


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
ComputeDep = Annotated[ComputePool, Depends(get_compute)]
