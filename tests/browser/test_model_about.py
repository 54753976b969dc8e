"""The page says what a stored model is: after an upload, what was found (embedding, RNN,
head) and ignored; the form then shows the model's cell, sizes and layers, locked; a
bundled preset is labelled a preset with its card; a bidirectional model's layers are
pickable by layer and direction; a plain RNN's nonlinearity is asked for, not guessed."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect

from tests.helpers.browser import field, open_page, page_request, revision, shot, wait_new_result

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _upload(page: Page, path: Path) -> None:
    field(page, "Weights").select_option(label="Stored model or preset")
    before = revision(page)
    page.locator("#upload").set_input_files(path)
    wait_new_result(page, before)


def test_an_upload_is_described_and_locks_the_form(page: Page, server: str) -> None:
    open_page(page, server)
    _upload(page, FIXTURES / "models" / "bigru_tagger.safetensors")
    about = page.locator("#model-about")
    expect(about).to_be_visible()
    expect(about.locator(".tag")).to_have_text("Uploaded")
    expect(about).to_contain_text("Embedding embed: 9 token ids → vectors of 4")
    expect(about).to_contain_text("RNN gru: GRU, 2 layers, H = 3, input size 4, bidirectional")
    expect(about).to_contain_text("Head classifier: 5 outputs (softmax)")
    expect(about).to_contain_text("Ignored (0): nothing")
    # the form shows the model's own cell, sizes and layers, and they cannot be changed
    for label, value in (("Cell", "gru"), ("Hidden size", "3"), ("Layers", "2")):
        expect(field(page, label)).to_have_value(value)
        expect(field(page, label)).to_be_disabled()
    # an embedding model without a vocab reads token ids
    expect(field(page, "Input mode")).to_have_value("tokens")
    request = page_request(page)
    assert set(request["input"]) == {"tokens"} and max(request["input"]["tokens"]) < 9
    # the layer picker: each layer in both directions
    layer = page.locator("#layer")
    expect(layer.locator("option")).to_have_text(["0 → (forward)", "0 ← (reverse)",
                                                  "1 → (forward)", "1 ← (reverse)"])
    result = page.evaluate("""() => { const r = window.gatescope.state.result;
      return {bi: r.bidirectional, n: r.layers.length, ids: Array.from(r.token_ids.data)}; }""")
    assert result["bi"] is True and result["n"] == 4 and result["ids"] == request["input"]["tokens"]
    shot(page, "model-about-bigru")
    # a reverse direction shown: titles say so, and the step panel's previous state is the
    # one it read before (the next step's)
    layer.select_option(label="1 ← (reverse)")
    expect(page.locator("#values-title")).to_contain_text("layer 1 ← (reverse)")
    prev = page.evaluate("""async () => {
      const { stepValues } = await import('/js/values.js');
      const s = window.gatescope.state, r = s.result;
      const v = stepValues(r, 3, 2, s.inputs);
      const h = r.layers[3].h, H = h.shape[1];
      return { prev: Array.from(v.hPrev), want: Array.from(h.data.subarray(3 * H, 4 * H)),
               xlen: v.x.length };
    }""")
    assert np.allclose(prev["prev"], prev["want"]) and prev["xlen"] == 6  # [h→; h←] below
    # a random model again: the controls unlock
    field(page, "Weights").select_option(label="Random (PyTorch init)")
    expect(field(page, "Cell")).to_be_enabled()
    expect(about).to_be_hidden()


def test_a_preset_is_labelled_a_preset_with_its_card(page: Page, server: str) -> None:
    open_page(page, server)
    with urllib.request.urlopen(f"{server}/api/v1/models") as r:
        listed = json.load(r)["data"]
    bracket = next(m for m in listed if m["name"] == "bracket_depth-lstm")
    before = revision(page)
    page.locator("#preset").select_option(bracket["model_id"])
    wait_new_result(page, before)
    about = page.locator("#model-about")
    expect(about.locator(".tag")).to_have_text("Preset")
    expect(about).to_contain_text("bracket_depth-lstm")
    expect(about).to_contain_text("Trained on")
    expect(about).to_contain_text("Held out")
    expect(about).to_contain_text("accuracy 100.0 % on 256 sequences")
    expect(about).to_contain_text("Units worth looking at")
    expect(about).to_contain_text(bracket["card"]["command"])
    # in the stored-model list the presets are a group of their own
    option = page.locator(f"option[value='{bracket['model_id']}']")
    group = page.locator("#model optgroup", has=option)
    expect(group).to_have_attribute("label", "Presets (bundled, trained)")
    expect(field(page, "Weights").locator("option:checked")).to_have_text("Stored model or preset")
    shot(page, "model-about-preset")


def test_a_plain_rnns_nonlinearity_is_asked_for(pages, server: str, tmp_path: Path) -> None:
    page = pages.new()
    pages.watch.allowed_console.append(re.compile(r"status of 422"))  # the upload's, asked
    data = (FIXTURES / "models" / "rnn_relu_classifier.safetensors").read_bytes()
    path = tmp_path / "relu-rnn.safetensors"
    path.write_bytes(data)
    open_page(page, server)
    field(page, "Weights").select_option(label="Stored model or preset")
    page.locator("#upload").set_input_files(path)
    about = page.locator("#model-about")
    expect(about).to_contain_text("holds a plain RNN")
    expect(about).to_contain_text("Which is it?")
    shot(page, "model-about-ask-cell")
    before = revision(page)
    about.get_by_role("button", name="It is RNN (relu)").click()
    wait_new_result(page, before)
    expect(about).to_contain_text("RNN model.rnn: RNN (relu), 2 layers")
    expect(about).to_contain_text("Head model.fc: 3 outputs")
    assert page.evaluate("window.gatescope.state.result.cell") == "rnn_relu"


def test_a_projected_lstm_shows_its_narrower_h(page: Page, server: str) -> None:
    """proj_size: h is P = 2 wide, c and the gates H = 5; every view draws without error."""
    open_page(page, server)
    _upload(page, FIXTURES / "models" / "bilstm_proj_size.safetensors")
    about = page.locator("#model-about")
    expect(about).to_contain_text("projected to P = 2 (proj_size)")
    shapes = page.evaluate("""() => { const r = window.gatescope.state.result;
      return {h: r.layers[0].h.shape, c: r.layers[0].c.shape, f: r.layers[0].gates.f.shape}; }""")
    assert shapes == {"h": [4, 2], "c": [4, 5], "f": [4, 5]}  # the page's 4-step example
    page.locator("#unit").fill("4")  # a cell unit past h's width
    page.locator("#unit").dispatch_event("change")
    page.locator("#next").click()
    expect(page.locator("#panel-title")).to_contain_text("unit 4")
    shot(page, "model-about-proj")


def test_a_stored_model_chosen_or_linked_shows_its_own_sizes(page: Page, server: str) -> None:
    """Picked from the list, or opened from a link whose H and L say otherwise, a stored
    model's cell, hidden size and layers are what the form shows — and what runs."""
    open_page(page, server)
    _upload(page, FIXTURES / "models" / "word_lm.safetensors")
    word_lm = page_request(page)["weights"]["model_id"]
    _upload(page, FIXTURES / "models" / "stacked_grucells.safetensors")
    before = revision(page)
    field(page, "Stored model").select_option(word_lm)
    page.locator("#run").click()
    wait_new_result(page, before)
    for label, value in (("Cell", "lstm"), ("Hidden size", "5"), ("Layers", "2")):
        expect(field(page, label)).to_have_value(value)
    expect(page.locator("#model-about")).to_contain_text("Embedding encoder")
    page.goto(f"{server}/?w=model&model={word_lm}&H=16&L=1&cell=gru&mode=tokens&seq=1%202%203")
    page.wait_for_function("document.body.dataset.state === 'ready'")
    for label, value in (("Cell", "lstm"), ("Hidden size", "5"), ("Layers", "2")):
        expect(field(page, label)).to_have_value(value)
    result = page.evaluate("() => { const r = window.gatescope.state.result;"
                           " return [r.cell, r.hidden_size, r.num_layers]; }")
    assert result == ["lstm", 5, 2]
