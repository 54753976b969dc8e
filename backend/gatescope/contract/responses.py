"""Response models of the contract, for the OpenAPI schema and for clients.

Arrays are nested lists of numbers, `null` where a value overflowed; with
`?encoding=typed` a finite array may instead be plotly.js's typed-array object
{"dtype": "f4" | "f8", "bdata": base64 of the little-endian values, "shape": "T,H"}.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .schemas import CellName


class TypedArray(BaseModel):
    """A finite array as plotly.js reads it directly: base64 of little-endian floats."""

    model_config = ConfigDict(extra="forbid")
    dtype: Literal["f4", "f8"]
    bdata: str = Field(description="base64 of the array's little-endian bytes, row-major")
    shape: str = Field(pattern=r"^\d+(,\d+)*$", description='e.g. "1024,256"')


Number = float | None  # null where a value overflowed (see warnings)
Array1 = list[Number] | TypedArray
Array2 = list[list[Number]] | TypedArray


class LayerGrads(BaseModel):
    h: Array2 = Field(description="T×H ∂L/∂h_t, total derivative")
    c: Array2 | None = Field(None, description="T×H ∂L/∂c_t, total derivative (LSTM only)")
    gates: dict[str, Array2] = Field(description="T×H ∂L/∂(pre-activation) per gate "
                                     "(RNN: a)")
    h_norm: Array1 = Field(description="[T] ‖∂L/∂h_t‖₂")
    c_norm: Array1 | None = Field(None, description="[T] ‖∂L/∂c_t‖₂ (LSTM only)")


class LayerOut(BaseModel):
    h: Array2 = Field(description="T×H hidden states")
    c: Array2 | None = Field(None, description="T×H cell states (LSTM only)")
    gates: dict[str, Array2] = Field(description="T×H post-activation values: LSTM i, f, g, "
                                     "o; GRU r, z, n; RNN none")
    pre: dict[str, Array2] = Field(description="T×H pre-activations of each gate (RNN: a)")
    grads: LayerGrads
    jacobian: dict[str, Array1 | dict[str, Array1]] = Field(
        description="[T] Frobenius norms per step: LSTM direct, forget, input, candidate, "
        "total (∂c_t/∂c_{t−1}) and flow {direct, forget, input, candidate}: ‖termᵀ ∂L/∂c_t‖₂; "
        "GRU, RNN total (∂h_t/∂h_{t−1})")
    connectivity: Array2 | None = Field(
        None, description="T×T ‖∂(Σ_j h_t[j]) / ∂x_s‖₂ (when requested)")


class Outputs(BaseModel):
    logits: Array2 = Field(description="T×K z_t = readout.weight h_t + readout.bias")
    probs: Array2 = Field(description="T×K softmax(z_t) over the K outputs")


class RunResponse(BaseModel):
    """`POST /api/v1/run`: every per-step value and gradient."""

    cell: str
    dtype: Literal["float64", "float32"]
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int
    truncate: int | None
    tokens: list[str] | None
    vocab: str | None
    loss: Number
    outputs: Outputs | None = Field(None, description="a model with a readout: its outputs "
                                    "on the top layer's states (K = readout.weight's rows)")
    layers: list[LayerOut]
    input_grad: Array2 = Field(description="T×D ∂L/∂x_t")
    param_grads: dict[str, Array1 | Array2] = Field(
        description="∂L/∂ every state_dict tensor, a readout's (readout.weight, readout.bias) "
        "last")
    initial_state_grad: dict[str, Array2] = Field(description="L×H ∂L/∂h_{−1} (and c_{−1})")
    grad_norm: dict[str, Number] | None = Field(
        None, description="with clip: the parameter gradients' total 2-norm before and after")
    warnings: list[str]


class JacobianResponse(BaseModel):
    """`POST /api/v1/jacobian`: the H×H matrices of one step."""

    step: int
    layer: int
    terms: dict[str, Array2] = Field(description="LSTM: direct, forget, input, candidate")
    total: Array2
    warnings: list[str]


class ModelInfo(BaseModel):
    """A stored model, or a bundled preset (read-only)."""

    model_id: str
    name: str
    cell: CellName
    input_size: int
    hidden_size: int
    num_layers: int
    vocab: str | None
    format: Literal["safetensors", "npz"] = "safetensors"
    bytes: int = Field(0, description="size of the uploaded file")
    prefix: str = Field("", description='the tensors\' name prefix in the file, e.g. '
                        '"encoder.lstm."')
    readout: int | None = Field(None, description="K, the outputs of the model's readout "
                                "(readout.weight is K×H); null without one")
    labels: list[str] | None = Field(None, description="the readout's K output names, e.g. "
                                     "the characters a character model predicts")
    task: str | None = Field(None, description="the task the model was trained on")
    card: dict[str, Any] | None = Field(None, description="the model card: free-form JSON")
    preset: bool = Field(False, description="bundled with gatescope (read-only), not uploaded")


class ModelList(BaseModel):
    data: list[ModelInfo]
    count: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx: what went wrong, where (`loc` names the field), and the limit."""

    detail: list[ErrorItem] | str
