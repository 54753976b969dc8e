"""`/models`: upload a trained state_dict, list and describe stored models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, Response, UploadFile

from ...contract.errors import ModelNotFoundError
from ...contract.responses import ErrorResponse, ModelInfo, ModelList
from ...contract.schemas import CellName
from ..compute import ingest
from ..deps import ComputeDep, SettingsDep, StoreDep
from ..pool import ClientGoneError, while_connected

router = APIRouter(prefix="/models", tags=["models"])

UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "the multipart body is malformed"},
    413: {"model": ErrorResponse, "description": "the file is over 64 MiB"},
    415: {"model": ErrorResponse,
          "description": "not a .safetensors or .npz file (a pickled .pt is refused)"},
    422: {"model": ErrorResponse, "description": "the file is not a model gatescope can run"},
}


# the upload form's fields
ModelUpload = Annotated[UploadFile, File(description="a state_dict as .safetensors or .npz")]
CellField = Annotated[CellName | None, Form(
    description="rnn_tanh (default) or rnn_relu for a plain RNN; LSTM and GRU are "
    "recognised from their weights")]
VocabField = Annotated[str | None, Form(min_length=1, max_length=1024, description=(
    "the characters of the input units, in order, for text input"))]
NameField = Annotated[str | None, Form(min_length=1, max_length=200)]


@router.post("", status_code=201, response_model=ModelInfo,
             responses={200: {"model": ModelInfo, "description": "already stored"},
                        **UPLOAD_ERRORS})
async def upload_model(
    request: Request,
    pool: ComputeDep,
    settings: SettingsDep,
    file: ModelUpload,
    cell: CellField = None,
    vocab: VocabField = None,
    name: NameField = None,
) -> Response:
    """Store a model. The cell, sizes and layers are read from the tensors; the id comes
    from the content (the same upload gives the same id: 201 the first time, 200 after).
    Nothing is ever unpickled."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"the file is larger than the limit of "
                            f"{settings.max_upload_bytes // 2**20} MiB")
    ticket = pool.admit()  # or BusyError: 503 with Retry-After (app.py)
    try:
        reply = await while_connected(
            request, pool.call(ingest, data, file.filename or "model", cell, vocab, name))
    except ClientGoneError:
        return Response(status_code=499)
    finally:
        ticket.release()
    return Response(reply.body, reply.status, media_type="application/json")


@router.get("", response_model=ModelList)
def list_models(store: StoreDep) -> ModelList:  # plain def: its disk reads run off the loop
    """Every bundled preset (`"preset": true`, read-only) and every uploaded model."""
    data = store.list()
    return ModelList(data=data, count=len(data))


@router.get("/{model_id}", response_model=ModelInfo,
            responses={404: {"model": ErrorResponse}})
def get_model(model_id: str, store: StoreDep) -> ModelInfo:
    try:
        return store.info(model_id)
    except ModelNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
