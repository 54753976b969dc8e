"""Server settings from GATESCOPE_* environment variables (pydantic-settings).

    GATESCOPE_HOST=127.0.0.1  GATESCOPE_PORT=8000  GATESCOPE_WORKERS=1
    GATESCOPE_DATA_DIR=~/.local/share/gatescope   (default: the per-user data folder)
    GATESCOPE_PRESETS_DIR=/path/to/presets         (default: the package's presets/)
    GATESCOPE_CORS_ORIGINS='["http://localhost:3000"]'   (JSON list; empty = CORS off)
    GATESCOPE_COMPUTE_PROCESSES=2   GATESCOPE_MAX_STEPS=4096 …
    GATESCOPE_MODEL_CACHE_BYTES=268435456   (stored models each compute process keeps)
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .contract.limits import (
    MAX_BATCH,
    MAX_HIDDEN,
    MAX_INPUT,
    MAX_LAYERS,
    MAX_MEMORY_BYTES,
    MAX_RESPONSE_BYTES,
    MAX_STEPS,
    MAX_WORK,
    Limits,
)
from .models.store import StoreOptions

MiB = 1024 * 1024
# a Host header's name (a DNS name, an IPv4 address or a bracketed IPv6 one), maybe a port
HOST_PATTERN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")  # as it stands in a URL, a cookie, a header


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATESCOPE_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    compute_processes: int = Field(
        2, ge=1, le=64, description="processes that run the engine, off the event loop")
    max_queue: int = Field(
        8, ge=0, le=1024, description="requests waiting for a compute process; beyond them "
        "503 with Retry-After")
    # slow clients (api/connections.py), in seconds; and the connections at once
    header_timeout: float = Field(10.0, gt=0, le=3600)
    body_timeout: float = Field(30.0, gt=0, le=3600)
    write_timeout: float = Field(30.0, gt=0, le=3600)
    min_send_rate: int = Field(
        256 * 1024, ge=0, description="bytes/s a client must read a response at, on "
        "average, once it has had write_timeout")
    max_sending_bytes: int = Field(
        2**30, ge=MiB, description="bodies still being sent, in all; beyond, 503")
    max_connections: int = Field(
        1000, ge=1, description="at most the descriptor limit less 64, whatever is set")
    shutdown_timeout: float = Field(
        5.0, ge=0, le=300, description="on SIGTERM: how long requests in flight may finish "
        "before they are cancelled")
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("gatescope")))
    presets_dir: Path | None = Field(
        None, description="bundled read-only models (<name>.safetensors); default: the "
        "package's presets/ directory")
    cors_origins: list[str] = Field(default_factory=list)
    frontend_dir: Path | None = Field(
        None, description="the explorer page's files; default: the copy inside the installed "
        "package, else the checkout's frontend/")

    # the contract's limits; a server may lower them (never above the schema's maxima)
    max_steps: int = Field(MAX_STEPS, ge=1, le=MAX_STEPS)
    max_hidden: int = Field(MAX_HIDDEN, ge=1, le=MAX_HIDDEN)
    max_input: int = Field(MAX_INPUT, ge=1, le=MAX_INPUT)
    max_layers: int = Field(MAX_LAYERS, ge=1, le=MAX_LAYERS)
    max_work: int = Field(MAX_WORK, ge=1, le=MAX_WORK)
    max_batch: int = Field(MAX_BATCH, ge=1, le=MAX_BATCH, description="sequences in one "
                           "request's input.batch")
    max_body_bytes: int = Field(32 * MiB, ge=1024)
    # a run's budget, from its sizes, before any work: its response body in the encoding
    # asked for, and its peak memory (runner/budget.py)
    max_response_bytes: int = Field(MAX_RESPONSE_BYTES, ge=MiB)
    max_memory_bytes: int = Field(MAX_MEMORY_BYTES, ge=16 * MiB)
    max_upload_bytes: int = Field(64 * MiB, ge=1024)
    model_cache_bytes: int = Field(
        256 * MiB, ge=0, description="each compute process keeps the stored models it ran "
        "last, up to this many bytes of float64 tensors; a larger model is loaded for each "
        "run and not kept (0: none kept)")

    @property
    def store_options(self) -> StoreOptions:
        """ModelStore's keyword settings: what an .npz may unpack to, the model cache."""
        return StoreOptions(max_upload_bytes=self.max_upload_bytes,
                            cache_bytes=self.model_cache_bytes)

    @cached_property
    def limits(self) -> Limits:
        return Limits(self.max_steps, self.max_hidden, self.max_input, self.max_layers,
                      self.max_work, max_batch=self.max_batch,
                      max_response_bytes=self.max_response_bytes,
                      max_memory_bytes=self.max_memory_bytes)

    # who may call the server (api/guard.py; README, "Security")
    allowed_hosts: list[str] = Field(
        default_factory=list, description='Host names the server answers to besides '
        'localhost, 127.0.0.1, [::1] and an explicit GATESCOPE_HOST (each "name" for any '
        'port, or "name:port"); "*" for any Host. A JSON list.')
    token: SecretStr | None = Field(
        None, description="when set, every /api/v1 request but /health must carry it: "
        "Authorization: Bearer <token> (or token <token>), or the cookie the page gets "
        "when opened as /?token=<token>. Empty: no token.")

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if host != "*" and not HOST_PATTERN.fullmatch(host):
                raise ValueError(f'{host!r} is not a host name, "name:port" or "*"')
        return [host.lower() for host in hosts]

    @field_validator("token")
    @classmethod
    def _token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is None or not token.get_secret_value():
            return None
        if not TOKEN_PATTERN.fullmatch(token.get_secret_value()):
            raise ValueError("the token may hold only letters, digits and - . _ ~ (e.g. "
                             "python -c 'import secrets; print(secrets.token_urlsafe())')")
        return token
