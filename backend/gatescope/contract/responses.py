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
    """One layer, or one direction of a bidirectional layer; every array in input order."""

    layer: int = Field(0, description="the layer, numbered from 0 at the bottom")
    direction: Literal["forward", "reverse"] = Field(
        "forward", description="reverse: a bidirectional layer's second direction, whose "
        "step t is its state after reading x_t … x_{T−1}")
    h: Array2 | None = Field(None, description="T×H hidden states (every part is sent "
                             "unless `fields` leaves it out or backward: false computes none)")
    c: Array2 | None = Field(None, description="T×H cell states (LSTM only)")
    gates: dict[str, Array2] | None = Field(None, description="T×H post-activation values: "
                                            "LSTM i, f, g, o; GRU r, z, n; RNN none")
    pre: dict[str, Array2] | None = Field(None, description="T×H pre-activations of each "
                                          "gate (RNN: a)")
    grads: LayerGrads | None = None
    jacobian: dict[str, Array1 | dict[str, Array1]] | None = Field(None,
        description="[T] Frobenius norms per step: LSTM direct, forget, input, candidate, "
        "total (∂c_t/∂c_{t−1}) and flow {direct, forget, input, candidate}: ‖termᵀ ∂L/∂c_t‖₂; "
        "GRU, RNN total (∂h_t/∂h_{t−1})")
    connectivity: Array2 | None = Field(
        None, description="T×T ‖∂(Σ_j h_t[j]) / ∂x_s‖₂ (when requested)")


class Outputs(BaseModel):
    logits: Array2 = Field(description="T×K z_t = readout.weight h_t + readout.bias")
    probs: Array2 = Field(description="T×K softmax(z_t) over the K outputs; for a "
                          "one-output head (K = 1), σ(z_t)")


class RunResponse(BaseModel):
    """`POST /api/v1/run`: every per-step value and gradient."""

    cell: str
    dtype: Literal["float64", "float32"]
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool = Field(False, description="layers then holds 2L entries: layer k's "
                                "forward direction, then its reverse")
    proj_size: int = Field(0, description="an LSTM with a projection: P, the width of h "
                           "(c and the gates stay H wide); 0 for none")
    backward: bool = Field(True, description="false: a forward pass only; no gradient, "
                           "Jacobian or connectivity field")
    fields: list[str] | None = Field(None, description="the parts asked for, when the "
                                     "request chose them")
    truncate: int | None
    tokens: list[str] | None
    vocab: str | None
    token_ids: list[int] | None = Field(None, description="a model with an embedding: the "
                                        "token ids it read (given, or the text's in the vocab)")
    loss: Number
    outputs: Outputs | None = Field(None, description="a model with a readout: its outputs "
                                    "on the top layer's states (K = readout.weight's rows)")
    layers: list[LayerOut]
    input_grad: Array2 | None = Field(None, description="T×D ∂L/∂x_t (with an embedding: ∂L/∂ "
                                      "the embedded vectors, T×E)")
    param_grads: dict[str, Array1 | Array2] | None = Field(
        None, description="∂L/∂ every parameter: an uploaded model's under its names in the file "
        "(embedding, RNN, head), else PyTorch's plain names, a readout's (readout.weight, "
        "readout.bias) last; none for a tensor the model lacks (bias=False)")
    initial_state_grad: dict[str, Array2] | None = Field(
        None, description="L×H ∂L/∂h_{−1} (and c_{−1}); 2L×H bidirectional, PyTorch's h_0 "
        "order")
    grad_norm: dict[str, Number] | None = Field(
        None, description="with clip: the parameter gradients' total 2-norm before and after")
    warnings: list[str]


class BatchResponse(BaseModel):
    """`POST /api/v1/run` with input.batch: one result per sequence, and their sum."""

    batch: list[RunResponse] = Field(description="what a /run of each sequence alone returns")
    param_grads_total: dict[str, Array1 | Array2] | None = Field(
        None, description="the parameter gradients summed over the sequences")
    warnings: list[str]


class JacobianResponse(BaseModel):
    """`POST /api/v1/jacobian`: the H×H matrices of one step."""

    step: int
    layer: int
    direction: Literal["forward", "reverse"] = "forward"
    terms: dict[str, Array2] = Field(description="LSTM: direct, forget, input, candidate")
    total: Array2
    warnings: list[str]


class EmbeddingInfo(BaseModel):
    """The torch.nn.Embedding in front of the RNN: token ids → vectors."""

    name: str = Field(description='its module name in the file, e.g. "encoder"')
    num_embeddings: int = Field(description="V, the token ids 0 … V − 1 it embeds")
    embedding_dim: int = Field(description="E, the RNN's input size")


class RNNInfo(BaseModel):
    """The recurrent network the file holds."""

    name: str = Field(description='its module name in the file ("" at the top level); '
                      '"cells.{k}" for cells stacked as layers')
    cell: CellName
    layers: int
    bidirectional: bool = False
    proj_size: int = Field(0, description="an LSTM's projection size P (h = W_hr m, P "
                           "wide); 0 for none")
    cells: bool = Field(False, description="a loop of nn.LSTMCell/GRUCell/RNNCell modules, "
                        "one per layer, rather than one nn.LSTM/GRU/RNN")
    bias: bool = Field(True, description="false for a file without biases (bias=False)")


class HeadInfo(BaseModel):
    """The torch.nn.Linear on the top layer's outputs."""

    name: str = Field(description='its module name in the file, e.g. "fc"')
    out_features: int = Field(description="K; 1 is a binary classifier (bce_with_logits)")
    bias: bool = True


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
    embedding: EmbeddingInfo | None = Field(None, description="what was found: the "
                                            "embedding in front of the RNN, or null")
    rnn: RNNInfo | None = Field(None, description="what was found: the RNN")
    head: HeadInfo | None = Field(None, description="what was found: the Linear head on the "
                                  "top layer, or null")
    ignored: list[str] = Field(default_factory=list, description="every tensor of the file "
                               "that is none of these, by name")


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
