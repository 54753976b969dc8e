"""The explorer page's speed in a real browser: a run of an LSTM with T = 1024 steps and
H = 256 units (float32) from clicking Run to every heatmap drawn, and one step of the
time cursor.

A real `gatescope serve` process answers; headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright — never `playwright install`) shows the page at 1400×900, loaded as
`/?H=256&dtype=float32&seq=<1024 characters>`.

(a) Run → drawn: the time from `click()` on Run to `document.body.dataset.state` back at
    "ready" (every heatmap, the norm plot and the step panel drawn), measured inside the
    page with performance.now(); median of --rounds runs after the page's own first run.
    The page's `window.gatescope.state.timing` splits each run into request (fetch and
    binary decode) and draw. Target: < 1.5 s.
(b) One step: an ArrowRight keydown dispatched on `document`; the handler is synchronous
    (cursors, stepper, step panel), so `dispatchEvent` is timed, once per animation frame,
    --presses times; median and 95th percentile. Also shown: the same plus the style and
    layout the update forces (a layout read right after), and the page's own
    `state.lastStepMs`. Target: < 16 ms (one frame at 60 Hz).

    .venv/bin/python benchmarks/ui.py [--rounds 5] [--presses 200]

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
from tests.helpers.server import running_server

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
T, H = 1024, 256
RUN_TARGET_MS = 1500.0
STEP_TARGET_MS = 16.0

RUN_ONCE = """async () => {
  const body = document.body;
  const ready = new Promise((resolve) => {
    const seen = new MutationObserver(() => {
      if (body.dataset.state === 'ready' || body.dataset.state === 'error') {
        seen.disconnect();
        resolve(performance.now());
      }
    });
    seen.observe(body, {attributes: true, attributeFilter: ['data-state']});
  });
  const started = performance.now();
  document.getElementById('run').click();
  const ended = await ready;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const s = window.gatescope.state;
  return {state: body.dataset.state, ms: ended - started, painted: performance.now() - started,
          request: s.timing.request, draw: s.timing.draw, steps: s.result.steps,
          hidden: s.result.hidden_size};
}"""

STEPS = """async (presses) => {
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  const key = () => new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true,
                                                   cancelable: true});
  const handler = [], layout = [], own = [];
  const first = window.gatescope.state.view.step;
  for (let k = 0; k < presses; k++) {
    await frame();
    const t0 = performance.now();
    document.dispatchEvent(key());
    const t1 = performance.now();
    void document.body.offsetHeight;  // the style and layout the update left pending
    const t2 = performance.now();
    handler.push(t1 - t0);
    layout.push(t2 - t0);
    own.push(window.gatescope.state.lastStepMs);
  }
  return {handler, layout, own, moved: window.gatescope.state.view.step - first,
          step: document.body.dataset.step};
}"""


def sequence() -> str:
    text = "the quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. "
    return (text * (T // len(text) + 1))[:T]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs timed (median)")
    parser.add_argument("--presses", type=int, default=200, help="ArrowRight presses timed")
    args = parser.parse_args()
    if args.presses >= T:
        parser.error(f"--presses must be below T = {T}")

    errors: list[str] = []
    with (running_server(tempfile.mkdtemp(prefix="gatescope-ui-")) as url,
          sync_playwright() as p):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        query = urllib.parse.urlencode({"H": H, "dtype": "float32", "seq": sequence()})
        page.goto(f"{url}/?{query}")
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=120_000)
        first = page.evaluate("window.gatescope.state.timing")

        runs = []
        for _ in range(args.rounds):
            r = page.evaluate(RUN_ONCE)
            if r["state"] != "ready" or (r["steps"], r["hidden"]) != (T, H):
                raise RuntimeError(f"unexpected run: {r}")
            runs.append(r)
        page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
        steps = page.evaluate(STEPS, args.presses)
        if steps["moved"] != args.presses:
            raise RuntimeError(f"the step moved {steps['moved']}, not {args.presses}")
        browser.close()

    med = statistics.median

    def verdict(value: float, target: float) -> str:
        return "yes" if value < target else "**no**"

    run_ms = med(r["ms"] for r in runs)
    handler = steps["handler"]
    layout = steps["layout"]
    print(f"LSTM T={T}, H={H}, float32; Chromium 1400×900; {args.rounds} runs, "
          f"{args.presses} steps\n")
    print("| what | median (ms) | p95 (ms) | target | met |")
    print("| --- | ---: | ---: | --- | --- |")
    print(f"| Run → all heatmaps drawn (state \"ready\") | {run_ms:.0f} | "
          f"{percentile([r['ms'] for r in runs], 95):.0f} | < {RUN_TARGET_MS:.0f} | "
          f"{verdict(run_ms, RUN_TARGET_MS)} |")
    print(f"| … of which request (fetch + binary decode) | {med(r['request'] for r in runs):.0f}"
          " | | | |")
    print(f"| … of which draw (12 heatmaps, norm plot, step panel) | "
          f"{med(r['draw'] for r in runs):.0f} | | | |")
    print(f"| Run → next frame painted after \"ready\" | {med(r['painted'] for r in runs):.0f}"
          " | | | |")
    print(f"| one step: ArrowRight handler (dispatchEvent) | {med(handler):.2f} | "
          f"{percentile(handler, 95):.2f} | < {STEP_TARGET_MS:.0f} | "
          f"{verdict(percentile(handler, 95), STEP_TARGET_MS)} |")
    print(f"| one step: handler + forced style/layout | {med(layout):.2f} | "
          f"{percentile(layout, 95):.2f} | < {STEP_TARGET_MS:.0f} | "
          f"{verdict(percentile(layout, 95), STEP_TARGET_MS)} |")
    print(f"| one step: the page's own state.lastStepMs | {med(steps['own']):.2f} | "
          f"{percentile(steps['own'], 95):.2f} | | |")
    print(f"\nThe page's first run (on load): request {first['request']:.0f} ms, "
          f"draw {first['draw']:.0f} ms.")
    print("Each timed run: " + ", ".join(
        f"{r['ms']:.0f} ({r['request']:.0f} + {r['draw']:.0f})" for r in runs)
          + " ms (request + draw).")
    if errors:
        print("\nConsole / page errors:\n" + "\n".join(f"- {e}" for e in errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
