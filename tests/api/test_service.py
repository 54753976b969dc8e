"""The service around the routes: OpenAPI with every limit and examples, docs that work
offline, plotly.js from the plotly package, CORS off by default."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from tests.helpers.api import make_client


def test_openapi_carries_the_request_models_limits_and_examples(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    schemas = spec["components"]["schemas"]
    run = schemas["RunRequest"]
    assert run["properties"]["hidden_size"]["maximum"] == 1024
    assert run["properties"]["num_layers"]["maximum"] == 4
    assert run["examples"]
    text = schemas["Input"]["properties"]["text"]["anyOf"][0]
    assert text["maxLength"] == 4096
    assert "maxItems" in str(schemas["Input"]["properties"]["values"])
    assert schemas["JacobianRequest"]["properties"]["step"]
    body = spec["paths"]["/api/v1/run"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/RunRequest")
    ok = spec["paths"]["/api/v1/run"]["post"]["responses"]["200"]
    refs = [one["$ref"] for one in ok["content"]["application/json"]["schema"]["anyOf"]]
    assert [r.rsplit("/", 1)[1] for r in refs] == ["RunResponse", "BatchResponse"]
    assert {"404", "413", "422"} <= set(spec["paths"]["/api/v1/run"]["post"]["responses"])
    params = spec["paths"]["/api/v1/run"]["post"]["parameters"]
    assert any(p["name"] == "encoding" and "typed" in str(p["schema"]) for p in params)
    assert set(spec["paths"]) >= {"/api/v1/health", "/api/v1/run", "/api/v1/jacobian",
                                  "/api/v1/models", "/api/v1/models/{model_id}"}


def test_docs_load_every_asset_locally(client):
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        urls += re.findall(r"url: '([^']+)'", r.text)
        assert urls, page
        for url in urls:
            assert not url.startswith(("http:", "https:", "//")), f"{page} fetches {url}"
            assert client.get(url).status_code == 200, url


def test_plotly_js_comes_from_the_plotly_package(client):
    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    installed = Path(str(files("plotly"))) / "package_data" / "plotly.min.js"
    assert r.content == installed.read_bytes()


def test_frontend_is_served_at_the_root(client):
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()


def test_cors_is_off_by_default_and_follows_the_setting(client, tmp_path):
    origin = {"origin": "http://example.org"}
    r = client.get("/api/v1/health", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    with make_client(tmp_path, cors_origins=["http://example.org"]) as open_client:
        r = open_client.get("/api/v1/health", headers=origin)
        assert r.headers["access-control-allow-origin"] == "http://example.org"
        r = open_client.get("/api/v1/health", headers={"origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_settings_come_from_gatescope_environment_variables(monkeypatch, tmp_path):
    from gatescope.settings import Settings
    monkeypatch.setenv("GATESCOPE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GATESCOPE_CORS_ORIGINS", '["http://a.test"]')
    monkeypatch.setenv("GATESCOPE_MAX_STEPS", "100")
    monkeypatch.setenv("GATESCOPE_PORT", "8123")
    s = Settings()
    assert (s.data_dir, s.cors_origins, s.limits.max_steps, s.port) == (
        tmp_path, ["http://a.test"], 100, 8123)
    monkeypatch.delenv("GATESCOPE_DATA_DIR")
    assert "gatescope" in str(Settings().data_dir)  # the per-user data folder
