"""Requests the engine and API tests share."""

from __future__ import annotations

from typing import Any


def exploding_relu_request(T: int = 200) -> dict[str, Any]:
    """An rnn_relu whose recurrent weights multiply the state by 50 each step: h grows like
    50^t and passes float64's 1.8e308 after about 180 steps."""
    H = 2
    tensors = {
        "weight_ih_l0": [[1.0], [1.0]],
        "weight_hh_l0": [[50.0, 0.0], [0.0, 50.0]],
        "bias_ih_l0": [0.0, 0.0],
        "bias_hh_l0": [0.0, 0.0],
    }
    return {"cell": "rnn_relu", "hidden_size": H, "input": {"values": [1.0] * T},
            "weights": {"tensors": tensors}}
