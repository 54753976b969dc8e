"""A trained model as a .safetensors file, written byte by byte (no safetensors package).

The format: an 8-byte little-endian header length n, n bytes of JSON header, then the
tensors' raw little-endian bytes, back to back. The header maps each tensor's name to
{"dtype": "F32" | "F64", "shape": […], "data_offsets": [begin, end]} (offsets into the data
after the header) and holds "__metadata__", a map of strings. The header is padded with
spaces to a multiple of 8 bytes, as the safetensors library does, so the data is aligned.

A model file holds the RNN's state_dict in PyTorch names, readout.weight (K, H) and
readout.bias (K), and the metadata keys (docs/API.md, "Models with a readout"):

    cell     "lstm" | "gru" | "rnn_tanh" | "rnn_relu"
    vocab    the input characters, in one-hot order
    labels   JSON list of the K class names
    task     the task's full name, e.g. "delayed_recall:d=20,symbols=4" (tasks.get rebuilds it)
    card     JSON model card: task, data, command, seed, hyperparameters, metrics (final
             held-out scores, the baseline and the margin over it), units (the top layer's
             units of largest |Pearson r| with the task's input properties, gatescope.core.units),
             gatescope version

Deterministic: the same run gives the same bytes (fixed key order, no timestamps, floats
printed by repr).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import readout
from .trainer import TrainResult

DTYPE_NAMES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64"}


def safetensors_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """Tensors (float32 or float64) and string metadata → the bytes of a .safetensors file,
    tensors stored in the mapping's order."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    chunks, offset = [], 0
    for name, array in tensors.items():
        dtype = np.dtype(array.dtype).newbyteorder("<")
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} is not float32 or float64")
        raw = np.ascontiguousarray(array, dtype).tobytes()
        header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")  # ASCII: \u escapes
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


CARD_HISTORY = 50  # evaluations kept in the card (the store caps a card at 64 KiB)


def _rounded(scores: Mapping[str, float]) -> dict[str, float]:
    return {k: (v if k == "step" else round(float(v), 6)) for k, v in scores.items()}


def _thinned(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """At most CARD_HISTORY evaluations, evenly spaced, the first and the last included."""
    keep = sorted(set(np.linspace(0, len(history) - 1, CARD_HISTORY).round().astype(int)))
    return [_rounded(history[k]) for k in keep] if len(history) > CARD_HISTORY else \
        [_rounded(h) for h in history]


def margin(final: float, baseline: float, higher_is_better: bool) -> dict[str, float]:
    """How far the final score beats the baseline, in the metric's units (negative: it does
    not), and the margin the card states: the measured one rounded down to a multiple of
    0.01, so "beats the baseline by at least `at_least`" holds for the measured score.

        measured = final − baseline  (accuracy)     baseline − final  (nats per char)
    """
    measured = round(final - baseline if higher_is_better else baseline - final, 6)
    # rounded before the floor: 1.24 · 100 is 123.99999999999999 in binary
    return {"measured": measured, "at_least": float(np.floor(round(measured * 100, 6)) / 100)}


def card(result: TrainResult) -> dict[str, Any]:
    """The model card: what the model learned, from what, how, and how well."""
    from .. import __version__

    cfg, task, metric = result.config, result.task, result.task.metric
    final = _rounded(result.final)
    return {
        "task": task.name,
        "data": task.describe(),
        "command": cfg.command(),
        "seed": cfg.seed,
        "hyperparameters": {
            "cell": cfg.cell, "hidden_size": cfg.hidden, "num_layers": cfg.layers,
            "steps": cfg.steps, "batch_size": cfg.batch, "seq_len": task.seq_len,
            "optimizer": {"name": "adam", "lr": cfg.lr, "betas": [0.9, 0.999], "eps": 1e-8},
            "clip_grad_norm": cfg.clip, "truncate": cfg.truncate, "dtype": cfg.dtype,
            "loss": "cross-entropy, mean over targeted steps, mean over sequences",
            "init": "PyTorch defaults: U(-1/sqrt(H), 1/sqrt(H)) for every tensor",
            "forget_bias": cfg.forget_bias,
        },
        "metrics": {
            "held_out_sequences": cfg.eval_size,
            "held_out_sha256": result.held_out_sha256,
            "final": final,
            "metric": metric.name,
            "baseline": {"name": metric.baseline_name, metric.name: round(metric.baseline, 6)},
            "margin_over_baseline": margin(final[metric.name], round(metric.baseline, 6),
                                           metric.higher_is_better),
            "history": _thinned(result.history),
        },
        "units": result.units,  # worth looking at: the top layer's h against input properties
        "example": task.example(),
        "gatescope_version": __version__,
    }


def model_bytes(result: TrainResult) -> bytes:
    """The trained model as the bytes of a .safetensors file (the module docstring)."""
    p = result.params
    rnn = [name for name in p if name not in (readout.WEIGHT, readout.BIAS)]
    tensors = {name: p[name] for name in [*rnn, readout.WEIGHT, readout.BIAS]}
    metadata = {
        "cell": result.config.cell,
        "vocab": result.task.vocab,
        "labels": json.dumps(list(result.task.labels)),
        "task": result.task.name,
        "card": json.dumps(card(result)),
    }
    return safetensors_bytes(tensors, metadata)
