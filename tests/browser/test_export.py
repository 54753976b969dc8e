"""Downloads: the whole result as the API's JSON, and the current step as CSV."""

from __future__ import annotations

import csv
import json

import numpy as np

import gatescope
from tests.helpers.browser import api_post, open_page, page_request

# this step's own vectors only, the same at every step (not step t+1's dc and f, which the
# equations borrow and the last step lacks)
LSTM_COLUMNS = {"h", "hPrev", "dh", "i", "f", "g", "o", "a_i", "a_f", "a_g", "a_o", "da_i",
                "da_f", "da_g", "da_o", "c", "cPrev", "dc", "fc", "ig", "tanhC"}


def test_downloads_json_of_the_result_and_csv_of_the_step(page, server):
    open_page(page, server, "?seq=export+me&H=5&loss=all&t=4")
    request = page_request(page)
    assert request["loss"] == {"type": "all_hidden_sum"}
    with page.expect_download() as info:
        page.get_by_role("button", name="Download result (JSON)").click()
    download = info.value
    assert download.suggested_filename == "gatescope-result.json"
    saved = json.loads(download.path().read_text(encoding="utf-8"))
    status, body = api_post(server, "/api/v1/run", json.dumps(request).encode())
    assert status == 200
    assert saved == json.loads(body)
    assert (saved["cell"], saved["steps"], saved["hidden_size"]) == ("lstm", 9, 5)

    t = 4
    result = gatescope.run(page_request(page))
    layer = result.layers[0]
    H = result.hidden_size
    with page.expect_download() as info:
        page.get_by_role("button", name="Download this step (CSV)").click()
    download = info.value
    assert download.suggested_filename == f"gatescope-layer0-step{t}.csv"
    text = download.path().read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == '# gatescope lstm layer 0 step 4 token "r"'
    data = lines[1:]
    assert len(data) == H + 1  # the column names, then one row per unit
    names = data[0].split(",")
    assert names[0] == "unit" and len(names) == len(set(names))
    assert set(names[1:]) == LSTM_COLUMNS
    rows = list(csv.DictReader(data))
    assert [int(r["unit"]) for r in rows] == list(range(H))

    def column(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    expected = {
        "h": layer.h[t], "hPrev": layer.h[t - 1], "c": layer.c[t], "cPrev": layer.c[t - 1],
        "dh": layer.grads["h"][t], "dc": layer.grads["c"][t], "a_o": layer.pre["o"][t],
        "da_g": layer.grads["gates"]["g"][t],
        **{g: layer.gates[g][t] for g in "ifgo"},
    }
    for name, want in expected.items():
        np.testing.assert_allclose(column(name), want, rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(column("ig"), layer.gates["i"][t] * layer.gates["g"][t],
                               rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(column("tanhC"), np.tanh(layer.c[t]), rtol=1e-14, atol=1e-15)
