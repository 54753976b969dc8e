"""The request models of the contract (docs/API.md), with every limit a field constraint.

Limits that depend on more than one field or on the data (T·H·L, a step inside T, a
tensor's shape) are checked by runner/prepare.py, with messages that name the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from .limits import (
    MAX_BATCH,
    MAX_CLASSES,
    MAX_CONNECTIVITY_STEPS,
    MAX_HIDDEN,
    MAX_INPUT,
    MAX_LAYERS,
    MAX_STEPS,
    MAX_VOCAB,
)

CellName = Literal["lstm", "gru", "rnn_tanh", "rnn_relu"]
DType = Literal["float64", "float32"]
Direction = Literal["forward", "reverse"]
# the parts of a /run response a request may choose (`fields`): each layer's, and the run's
LAYER_FIELDS = ("h", "c", "gates", "pre", "grads", "jacobian")
RUN_FIELDS = ("outputs", "input_grad", "param_grads", "initial_state_grad")
FieldName = Literal["h", "c", "gates", "pre", "grads", "jacobian", "outputs", "input_grad",
                    "param_grads", "initial_state_grad"]
GRADIENT_FIELDS = frozenset({"grads", "jacobian", "input_grad", "param_grads",
                             "initial_state_grad"})  # what backpropagation computes


class Strict(BaseModel):
    """Unknown fields are errors (a typo never passes silently); so are NaN and ±Infinity,
    and types JSON did not send (strict: true is not 1, "1" is not 1)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def _integral(v: Any) -> Any:
    """JSON Schema counts 16.0 as an integer, so gatescope does too (strict mode otherwise
    refuses every float, and it refuses true and "16" either way)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


Int = Annotated[int, BeforeValidator(_integral)]


# Ints with limits, each Field placed before the validator so the JSON schema shows them.
StepIndex = Annotated[int, Field(ge=0, lt=MAX_STEPS), BeforeValidator(_integral)]  # 0 ≤ t < T
StepCount = Annotated[int, Field(ge=1, le=MAX_STEPS), BeforeValidator(_integral)]  # 1 ≤ k ≤ T
ClassIndex = Annotated[int, Field(ge=0, lt=MAX_CLASSES), BeforeValidator(_integral)]
TokenId = Annotated[int, Field(ge=0, lt=MAX_VOCAB), BeforeValidator(_integral)]
LayerIndex = Annotated[int, Field(ge=0, lt=MAX_LAYERS), BeforeValidator(_integral)]
UnitIndex = Annotated[int, Field(ge=0, lt=MAX_HIDDEN), BeforeValidator(_integral)]
ClassTargets = Annotated[list[ClassIndex | None], Field(min_length=1, max_length=MAX_STEPS)]
UnitList = Annotated[list[UnitIndex], Field(min_length=1, max_length=MAX_HIDDEN)]


Row = Annotated[list[float], Field(min_length=1, max_length=MAX_INPUT)]  # D numbers
HiddenRow = Annotated[list[float], Field(min_length=1, max_length=MAX_HIDDEN)]  # H numbers
# a top layer's output: H numbers, or 2H bidirectional ([h→; h←])
OutputRow = Annotated[list[float], Field(min_length=1, max_length=2 * MAX_HIDDEN)]
StepRows = Annotated[list[OutputRow], Field(min_length=1, max_length=MAX_STEPS)]  # T×H
# L×H, or (2L)×H bidirectional (PyTorch's h_0 order: layer k's forward row 2k, reverse 2k+1)
LayerRows = Annotated[list[HiddenRow], Field(min_length=1, max_length=2 * MAX_LAYERS)]
# a state_dict tensor: a bias (G·H) or a weight (G·H rows of D, H or, above a bidirectional
# layer, 2H), G·H ≤ 4·1024
TensorVector = Annotated[list[float], Field(min_length=1, max_length=4 * MAX_HIDDEN)]
TensorRow = Annotated[list[float], Field(min_length=1, max_length=max(MAX_INPUT, 2 * MAX_HIDDEN))]
TensorMatrix = Annotated[list[TensorRow], Field(min_length=1, max_length=4 * MAX_HIDDEN)]


# ── input ────────────────────────────────────────────────────────────────────────────

def _rows(v: Any) -> Any:
    """T numbers mean T steps of one input each: [v0, v1] → [[v0], [v1]]."""
    if isinstance(v, list):
        return [x if isinstance(x, list) else [x] for x in v]
    return v


Values = Annotated[
    list[Row],
    Field(min_length=1, max_length=MAX_STEPS),
    BeforeValidator(_rows),
    WithJsonSchema({
        "description": "T×D numbers (T ≤ 4096, D ≤ 1024), or T numbers for D = 1.",
        "anyOf": [
            {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": {"type": "number"}},
            {"type": "array", "minItems": 1, "maxItems": MAX_STEPS,
             "items": {"type": "array", "minItems": 1, "maxItems": MAX_INPUT,
                       "items": {"type": "number"}}},
        ],
    }),
]


class Sequence(Strict):
    """One sequence: `text` (one token per Unicode code point, one-hot over `vocab`, or its
    token id in `vocab` for a model with an embedding), `values` (T×D numbers, or T
    numbers) or `tokens` (T token ids, for a model with an embedding)."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"text": "hello world"}, {"text": "abba", "vocab": "ab"},
                     {"values": [0.5, -1.0, 2.0]}, {"tokens": [3, 1, 4, 1, 5]}],
        # what _one_kind checks, for clients and generators: text (and vocab), values or tokens
        "oneOf": [{"required": ["text"],
                   "not": {"anyOf": [{"required": ["values"]}, {"required": ["tokens"]}]}},
                  {"required": ["values"], "not": {"anyOf": [
                      {"required": ["text"]}, {"required": ["vocab"]}, {"required": ["tokens"]}]}},
                  {"required": ["tokens"], "not": {"anyOf": [
                      {"required": ["text"]}, {"required": ["vocab"]}, {"required": ["values"]}]}}],
    })

    text: str | None = Field(None, min_length=1, max_length=MAX_STEPS,
                             description="T ≤ 4096 characters.")
    vocab: str | None = Field(
        None, min_length=1, max_length=MAX_INPUT,
        description="Distinct characters, one input unit each (D ≤ 1024), or one token id "
        "each for a model with an embedding. Default: the loaded model's vocab, else the "
        "sorted distinct characters of the text.")
    values: Values | None = None
    tokens: Annotated[list[TokenId], Field(min_length=1, max_length=MAX_STEPS)] | None = Field(
        None, description="T token ids, each below the embedding's V (a model with an "
        "nn.Embedding in front)")

    def _check_kind(self) -> None:
        given = [k for k in ("text", "values", "tokens") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give text, values or tokens (exactly one of them)")
        if self.vocab is not None and self.text is None:
            raise ValueError(f"vocab goes with text input, not with {given[0]}")

    @model_validator(mode="after")
    def _one_kind(self) -> Sequence:
        self._check_kind()
        return self


class Input(Sequence):
    """The sequence (as `Sequence`), or `batch`: several, each its own text, values or
    tokens, lengths free, run together."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"text": "hello world"}, {"text": "abba", "vocab": "ab"},
                     {"values": [0.5, -1.0, 2.0]}, {"tokens": [3, 1, 4, 1, 5]},
                     {"batch": [{"text": "hello"}, {"text": "gates"}]}],
        "oneOf": [{"required": [k], "not": {"anyOf": [{"required": [o]} for o in
                                                     ("text", "values", "tokens", "batch")
                                                     if o != k]}}
                  for k in ("text", "values", "tokens", "batch")],
    })

    batch: Annotated[list[Sequence], Field(min_length=1, max_length=MAX_BATCH)] | None = Field(
        None, description=f"≤ {MAX_BATCH} sequences, each a text, values or tokens input; "
        "the response holds one result per sequence in `batch`")

    @model_validator(mode="after")
    def _one_kind(self) -> Input:
        if self.batch is None:
            self._check_kind()
            return self
        given = [k for k in ("text", "values", "tokens", "vocab") if getattr(self, k) is not None]
        if given:
            raise ValueError(f"give batch alone: each sequence of the batch has its own "
                             f"{given[0]}")
        return self


# ── weights ──────────────────────────────────────────────────────────────────────────

class Weights(Strict):
    """Where the weights come from: PyTorch's default init with a seed (the default), a
    stored model (`model_id`), or every state_dict tensor given inline (`tensors`)."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"init": "pytorch", "seed": 0, "forget_bias": 1.0},
                     {"model_id": "3f2a9c0d1e4b5a69"}],
        # what _one_source checks: random init, or model_id alone, or tensors alone
        "oneOf": [{"not": {"anyOf": [{"required": ["model_id"]}, {"required": ["tensors"]}]}},
                  {"required": ["model_id"], "not": {"anyOf": [
                      {"required": [k]} for k in ("tensors", "init", "seed", "forget_bias",
                                                  "recurrent_scale")]}},
                  {"required": ["tensors"], "not": {"anyOf": [
                      {"required": [k]} for k in ("model_id", "init", "seed", "forget_bias",
                                                  "recurrent_scale")]}}],
    })

    init: Literal["pytorch"] = Field(
        "pytorch", description="Every tensor from U(−1/√H, 1/√H), drawn with `seed`.")
    seed: Int = Field(0, ge=0, le=2**63 - 1)
    forget_bias: float | None = Field(
        None, ge=-1e3, le=1e3,
        description="LSTM only: added to both forget-gate bias blocks (b_if and b_hf).")
    recurrent_scale: float = Field(
        1.0, gt=0, le=100,
        description="multiplies every weight_hh after the init: above ~1.5 a tanh RNN's "
        "gradient explodes, below 1 it vanishes faster")
    model_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                                 description="A model from the store or a bundled preset.")
    tensors: dict[str, TensorVector | TensorMatrix] | None = Field(
        None, max_length=2 * 5 * MAX_LAYERS + 2,  # bidirectional, with weight_hr: 5 per unit
        description="weight_ih_l{k} (G·H, D_k), weight_hh_l{k} (G·H, H), bias_ih_l{k} (G·H), "
        "bias_hh_l{k} (G·H) for every layer k; optionally a readout on the top layer, "
        "readout.weight (K, H) and readout.bias (K), K ≤ 1024; nothing else.")

    @model_validator(mode="after")
    def _one_source(self) -> Weights:
        if self.model_id is not None and self.tensors is not None:
            raise ValueError("give model_id or tensors, not both")
        given = self.model_fields_set & {"init", "seed", "forget_bias", "recurrent_scale"}
        if given and (self.model_id is not None or self.tensors is not None):
            raise ValueError(f"{', '.join(sorted(given))} only apply to random init, "
                             "not to given weights")
        return self

    @property
    def source(self) -> Literal["init", "model", "tensors"]:
        if self.model_id is not None:
            return "model"
        return "tensors" if self.tensors is not None else "init"


# ── losses ───────────────────────────────────────────────────────────────────────────

OnLayer = Annotated[LayerIndex | None, Field(
    description="the layer whose output h_t the loss reads; default: the top")]


class LastHiddenSum(Strict):
    """L = Σ_j h_{T−1}[j]."""

    type: Literal["last_hidden_sum"]
    layer: OnLayer = None


class HiddenUnit(Strict):
    """L = h_step[unit]; step defaults to T−1."""

    type: Literal["hidden_unit"]
    step: StepIndex | None = None
    unit: Int = Field(0, ge=0, lt=2 * MAX_HIDDEN,
                      description="a unit of the layer's output: < H, or < 2H bidirectional")
    layer: OnLayer = None


class AllHiddenSum(Strict):
    """L = Σ_t Σ_j h_t[j]."""

    type: Literal["all_hidden_sum"]
    layer: OnLayer = None


class MSE(Strict):
    """L = ½ Σ_t ‖h_t − y_t‖²."""

    type: Literal["mse"]
    targets: StepRows = Field(description="T×H, one target vector per step.")
    layer: OnLayer = None


# T rows of upstream gradient, each the layer's width or null (zero)
UpstreamRows = Annotated[list[OutputRow | None], Field(min_length=1, max_length=MAX_STEPS)]


class Upstream(Strict):
    """Any upstream gradient, as a custom head would send it: L = Σ_t ⟨dh_t, h_t⟩ +
    ⟨dc_t, c_t⟩ on one layer's outputs — exactly torch.autograd.backward([h, c], [dh, dc])."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "upstream", "layer": 0, "dh": [[0.1, -0.2], None, [0.0, 1.0]]}]})

    type: Literal["upstream"]
    layer: OnLayer = None
    dh: UpstreamRows | None = Field(None, description="T rows of ∂L/∂h_t, each as wide as "
                                    "the layer's output (2H bidirectional, P with proj_size); "
                                    "null for a zero row")
    dc: UpstreamRows | None = Field(None, description="LSTM only: T rows of ∂L/∂c_t, each H "
                                    "wide (2H bidirectional: [c→; c←]); null for a zero row")

    @model_validator(mode="after")
    def _some_gradient(self) -> Upstream:
        if self.dh is None and self.dc is None:
            raise ValueError("give dh, dc or both: the upstream gradient")
        return self


class _StepTargets(Strict):
    """A readout loss with one target per step, null where a step has none: at least one
    step must have one."""

    @model_validator(mode="after")
    def _some_target(self) -> _StepTargets:
        targets = getattr(self, "targets")  # noqa: B009  # each loss types its own
        if all(k is None for k in targets):
            raise ValueError("every target is null: at least one step needs a target")
        return self


class CrossEntropy(_StepTargets):
    """Needs a readout: L = mean over the steps t whose target k_t is not null of
    −log probs_t[k_t], probs_t = softmax(readout.weight h_t + readout.bias)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "cross_entropy", "targets": [2, None, 0, 1]}]})

    type: Literal["cross_entropy"]
    targets: ClassTargets = Field(
        description="T class indices k_t < K, null for a step without a target; at least "
        "one not null.")


class BCEWithLogits(_StepTargets):
    """Needs a one-output head (K = 1, a binary classifier): L = mean over the steps t whose
    target y_t is not null of −[y_t log σ(z_t) + (1 − y_t) log(1 − σ(z_t))],
    z_t = head.weight h_t + head.bias (torch.nn.functional.binary_cross_entropy_with_logits)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "bce_with_logits", "targets": [None, 0, 1, 1]}]})

    type: Literal["bce_with_logits"]
    targets: Annotated[list[Annotated[float, Field(ge=0, le=1)] | None],
                       Field(min_length=1, max_length=MAX_STEPS)] = Field(
        description="T targets in [0, 1] (0 or 1 for a label), null for a step without one; "
        "at least one not null.")


class NextToken(Strict):
    """Needs a readout and text input: cross-entropy against the next character, as its
    index in the model's labels (the last step has no target)."""

    type: Literal["next_token"]


class TaskLoss(Strict):
    """Needs a stored model whose metadata names a task (gatescope.tasks), and text input:
    the loss it was trained with, cross-entropy on the targets the task defines for this
    text (`tasks.get(task).targets(text)`, null where a step has none)."""

    type: Literal["task"]


Loss = Annotated[
    LastHiddenSum | HiddenUnit | AllHiddenSum | MSE | CrossEntropy | NextToken | TaskLoss
    | BCEWithLogits | Upstream, Field(discriminator="type")]
HIDDEN_STATE_LOSSES = (LastHiddenSum, HiddenUnit, AllHiddenSum, MSE, Upstream)
READOUT_LOSSES = (CrossEntropy, NextToken, TaskLoss, BCEWithLogits)  # losses on the head's


# ── the request ──────────────────────────────────────────────────────────────────────

class InitialState(Strict):
    """States entering step 0, one row per layer; zeros where left out."""

    h: LayerRows | None = None
    c: LayerRows | None = Field(None, description="LSTM only.")


# ── the gradient-flow lab ────────────────────────────────────────────────────────────

class Clip(Strict):
    """Scale all parameter gradients together as torch.nn.utils.clip_grad_norm_ does."""

    max_norm: float = Field(gt=0, le=1e12)


class Intervention(Strict):
    """Replace units of a gate, c or h of one layer at steps start ≤ t < stop with a value,
    right after it is computed; no gradient flows through a replaced entry into what
    produced it (torch.where(mask, value, x))."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"layer": 0, "target": "f", "start": 0, "stop": 5, "units": [0, 1], "value": 1.0}]})

    layer: LayerIndex = 0
    direction: Direction = Field("forward", description="of a bidirectional layer; start "
                                 "and stop count input steps either way")
    target: Literal["i", "f", "g", "o", "r", "z", "n", "c", "h"] = Field(
        description="a gate of the cell (LSTM i, f, g, o; GRU r, z, n), c (LSTM) or h")
    start: StepIndex = 0
    stop: StepCount | None = Field(None, description="default: T")
    units: UnitList | None = Field(
        None, description="unit indices; null for all")
    value: float = Field(ge=-1e6, le=1e6)


class RunRequest(Strict):
    """`POST /api/v1/run`: a forward pass and backpropagation through time."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"cell": "lstm", "hidden_size": 16, "input": {"text": "hello world"}},
        {"cell": "gru", "hidden_size": 8, "num_layers": 2,
         "input": {"values": [[0.5, -1.0], [0.25, 0.0], [1.0, 2.0]]},
         "weights": {"init": "pytorch", "seed": 7},
         "loss": {"type": "hidden_unit", "step": 1, "unit": 3}, "truncate": 2},
    ]})

    cell: CellName = "lstm"
    hidden_size: Int = Field(16, ge=1, le=MAX_HIDDEN, description="H ≤ 1024.")
    num_layers: Int = Field(1, ge=1, le=MAX_LAYERS, description="L ≤ 4.")
    bidirectional: bool = Field(False, description="each layer also reads the sequence "
                                "backwards, as torch.nn.LSTM(bidirectional=True); a stored "
                                "model or given tensors say it themselves")
    input: Input
    weights: Weights = Field(default_factory=Weights)
    initial_state: InitialState | None = None
    loss: Loss = Field(default_factory=lambda: LastHiddenSum(type="last_hidden_sum"),
                       description="what is differentiated (with input.batch, in every "
                       "sequence, unless `losses` gives each its own)")
    losses: Annotated[list[Loss], Field(min_length=1, max_length=MAX_BATCH)] | None = Field(
        None, description="with input.batch: one loss per sequence, in its order (their "
        "targets fit their own lengths); instead of `loss`")
    truncate: StepCount | None = Field(None,
                                 description="Truncated BPTT window k ≥ 1; null for full BPTT.")
    dtype: DType = "float64"
    clip: Clip | None = None
    interventions: list[Intervention] = Field(default_factory=list, max_length=64,
                                              description="applied in list order")
    connectivity: bool = Field(False, description="add each layer's T×T connectivity "
                               f"(T ≤ {MAX_CONNECTIVITY_STEPS})")
    backward: bool = Field(True, description="false: the forward pass only — values, outputs "
                           "and the loss; no gradient, Jacobian or connectivity is computed "
                           "or sent")
    fields: list[FieldName] | None = Field(
        None, min_length=1, max_length=10,
        description="send only these parts (each layer's h, c, gates, pre, grads, jacobian; "
        "the run's outputs, input_grad, param_grads, initial_state_grad); the scalars always "
        "come. Work that only the others need is skipped. Default: every part")

    @model_validator(mode="after")
    def _losses_per_sequence(self) -> RunRequest:
        if self.losses is not None:
            if self.input.batch is None:
                raise ValueError("losses goes with input.batch, one per sequence; a single "
                                 "sequence takes loss")
            if "loss" in self.model_fields_set:
                raise ValueError("give loss (the same in every sequence) or losses (one per "
                                 "sequence), not both")
            if len(self.losses) != len(self.input.batch):
                raise ValueError(f"the batch has {len(self.input.batch)} sequences but "
                                 f"losses lists {len(self.losses)}: one per sequence")
        return self

    @model_validator(mode="after")
    def _forward_only(self) -> RunRequest:
        if not self.backward:
            asked = sorted(GRADIENT_FIELDS & set(self.fields or ()))
            if asked:
                raise ValueError(f"backward: false computes no gradients, so fields cannot "
                                 f"ask for {', '.join(asked)}")
            for name, given in (("connectivity", self.connectivity),
                                ("clip", self.clip is not None)):
                if given:
                    raise ValueError(f"{name} needs gradients: it cannot go with backward: "
                                     "false")
        return self

    def wants(self, part: str) -> bool:
        """Whether the response sends `part` (a field name): asked for by `fields` (or no
        fields given), and computed (no gradient part when backward is false)."""
        if not self.backward and part in GRADIENT_FIELDS:
            return False
        return self.fields is None or part in self.fields

    @property
    def needs_backward(self) -> bool:
        """Whether any part sent (or connectivity, or clip) needs backpropagation."""
        return self.backward and (self.connectivity or self.clip is not None or any(
            self.wants(part) for part in GRADIENT_FIELDS))


class JacobianRequest(RunRequest):
    """`POST /api/v1/jacobian`: a run request plus the step and layer to expand."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"cell": "lstm", "hidden_size": 8, "input": {"text": "hello world"}, "step": 4},
        {"cell": "gru", "hidden_size": 4, "num_layers": 2, "input": {"values": [1.0, 0.5, -1.0]},
         "step": 2, "layer": 1},
    ]})

    step: Int = Field(ge=0, lt=MAX_STEPS)
    layer: Int = Field(0, ge=0, lt=MAX_LAYERS)
    direction: Direction = Field("forward", description="of a bidirectional layer: the "
                                 "reverse direction's step t follows its own recursion, "
                                 "from its state after x_{t+1} to its state after x_t")
