"""`/models`: upload a trained state_dict, list and describe stored models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile

from ...contract.errors import ModelNotFoundError
from ...contract.responses import ErrorResponse, ModelInfo, ModelList
from ...contract.schemas import CellName
from ...models.layout import Choice
from ...models.store import DamagedModelError, StorageError
from ..compute import ingest
from ..deps import ComputeDep, SettingsDep, StoreDep
from ..pool import while_connected

router = APIRouter(prefix="/models", tags=["models"])

DEFAULT_PAGE = 100
MAX_PAGE = 1000

UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "the multipart body is malformed"},
    413: {"model": ErrorResponse, "description": "the file is over 64 MiB"},
    415: {"model": ErrorResponse,
          "description": "not a .safetensors or .npz file (a pickled .pt is refused)"},
    422: {"model": ErrorResponse, "description": "the file is not a model gatescope can run"},
    503: {"model": ErrorResponse,
          "description": "the data directory is read-only or cannot be written"},
    507: {"model": ErrorResponse, "description": "the server's storage is full"},
}
DAMAGED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse,
          "description": "the stored model is damaged (upload its file again)"},
}


class ModelPage(ModelList):
    """One page of the model list: `count` is the whole list's length."""

    limit: int
    offset: int


# the upload form's fields
ModelUpload = Annotated[UploadFile, File(description="a state_dict as .safetensors or .npz")]
CellField = Annotated[CellName | None, Form(
    description="rnn_tanh (default) or rnn_relu for a plain RNN; LSTM and GRU are "
    "recognised from their weights")]
VocabField = Annotated[str | None, Form(min_length=1, max_length=1024, description=(
    "the characters of the input units, in order, for text input"))]
NameField = Annotated[str | None, Form(min_length=1, max_length=200)]
PartField = Annotated[str | None, Form(
    max_length=200, pattern=r"^[A-Za-z0-9_.{}-]*$",
    description='a module name in the file ("encoder", "rnn.lstm"; "." for the RNN at the '
    'top level), or "none": which part to take where several fit')]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_PAGE, description=(
    f"how many models to return, 1 … {MAX_PAGE}"))]
OffsetQuery = Annotated[int, Query(ge=0, le=2**31, description=(
    "how many models of the list to skip"))]


@router.post("", status_code=201, response_model=ModelInfo,
             responses={200: {"model": ModelInfo, "description": "already stored"},
                        **UPLOAD_ERRORS, **DAMAGED})
async def upload_model(
    request: Request,
    pool: ComputeDep,
    settings: SettingsDep,
    file: ModelUpload,
    cell: CellField = None,
    vocab: VocabField = None,
    name: NameField = None,
    embedding: PartField = None,
    rnn: PartField = None,
    head: PartField = None,
) -> Response:
    """Store a model. The cell, sizes and layers are read from the tensors; the id comes
    from the content (the same upload gives the same id: 201 the first time, 200 after).
    Nothing is ever unpickled."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"the file is larger than the limit of "
                            f"{settings.max_upload_bytes // 2**20} MiB")
    with pool.admit():  # or BusyError (503); a client gone meanwhile: 499 (app.py)
        try:
            reply = await while_connected(
                request, pool.call(ingest, data, file.filename or "model", cell, vocab, name,
                                    Choice(embedding, rnn, head)))
        except (StorageError, DamagedModelError) as exc:  # raised in the worker, sent back
            raise HTTPException(exc.status, str(exc)) from None
    return Response(reply.body, reply.status, media_type="application/json")


@router.get("", response_model=ModelPage)
def list_models(store: StoreDep, limit: LimitQuery = DEFAULT_PAGE,
                offset: OffsetQuery = 0) -> ModelPage:  # plain def: disk reads off the loop
    """The bundled presets (`"preset": true`, read-only, by name), then the uploaded models
    (by id), `limit` of them from `offset` on; `count` is how many there are in all. A
    damaged upload is left out (the server's log names it)."""
    data, count = store.page(offset, limit)
    return ModelPage(data=data, count=count, limit=limit, offset=offset)


@router.get("/{model_id}", response_model=ModelInfo,
            responses={404: {"model": ErrorResponse}, **DAMAGED})
def get_model(model_id: str, store: StoreDep) -> ModelInfo:
    """One model's ModelInfo: 404 for an id no model has (an id that cannot be one is not
    echoed back whole), 409 for a stored model whose info.json is damaged."""
    try:
        return store.info(model_id)
    except DamagedModelError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except ModelNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
