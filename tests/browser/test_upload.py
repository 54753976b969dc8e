"""Uploading a .safetensors LSTM through the page stores it, selects it and runs it."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import expect
from safetensors.numpy import save_file

import gatescope
from tests.helpers.browser import (
    all_maps,
    assert_maps_match,
    field,
    open_page,
    page_request,
    revision,
    shot,
    url_param,
    wait_new_result,
)

D, H = 5, 6
VOCAB = "abcde"


def lstm_state_dict() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    shapes = {"weight_ih_l0": (4 * H, D), "weight_hh_l0": (4 * H, H), "bias_ih_l0": (4 * H,),
              "bias_hh_l0": (4 * H,)}
    return {k: rng.uniform(-0.6, 0.6, s).astype(np.float32) for k, s in shapes.items()}


def test_uploading_a_safetensors_lstm_runs_it(page, server, tmp_path):
    tensors = lstm_state_dict()
    path = tmp_path / "tiny-lstm.safetensors"
    save_file(tensors, str(path), metadata={"vocab": VOCAB})

    open_page(page, server)
    field(page, "Sequence").fill("abcdeedcba")  # in the model's vocab
    field(page, "Weights").select_option(label="Stored model or preset")
    expect(field(page, "Upload .safetensors or .npz")).to_be_visible()
    expect(field(page, "Stored model")).to_be_visible()
    expect(field(page, "Seed")).to_be_hidden()
    before = revision(page)
    page.locator("#upload").set_input_files(path)
    wait_new_result(page, before)

    result = page.evaluate("""() => { const r = window.gatescope.state.result;
      return {cell: r.cell, H: r.hidden_size, D: r.input_size, L: r.num_layers,
              vocab: r.vocab, steps: r.steps}; }""")
    assert result == {"cell": "lstm", "H": H, "D": D, "L": 1, "vocab": VOCAB, "steps": 10}
    request = page_request(page)
    model_id = request["weights"]["model_id"]
    stored = field(page, "Stored model")
    expect(stored).to_have_value(model_id)
    label = stored.locator("option:checked")
    expect(label).to_contain_text("tiny-lstm")
    expect(label).to_contain_text("LSTM H=6 L=1")
    expect(page.locator("#status")).to_contain_text("10 steps × 6 units")
    expect(page.locator("#values-title")).to_contain_text("LSTM · T=10, H=6")
    for name, value in [("w", "model"), ("model", model_id), ("seq", "abcdeedcba")]:
        expect(page).to_have_url(url_param(name, value))
    for slot in ("input", "weights", "loss", "run"):
        expect(page.locator(f"#error-{slot}")).to_be_hidden()

    # the numbers are those of the uploaded tensors, run in-process
    inline = {**request, "cell": "lstm", "input": {"text": "abcdeedcba", "vocab": VOCAB},
              "weights": {"tensors": {k: v.tolist() for k, v in tensors.items()}}}
    assert_maps_match(all_maps(page), gatescope.run(inline), 0)
    shot(page, "desktop-uploaded-model")
