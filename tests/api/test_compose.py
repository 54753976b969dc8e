"""docker-compose.yml and the Dockerfile, checked offline (no Docker engine runs here):
the file validates against the Compose specification's JSON schema (vendored in
tests/fixtures/compose-spec.json from the compose-spec project), and has the properties
the deployment needs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((ROOT / "tests" / "fixtures" / "compose-spec.json").read_text())
    # the schema says "draft/2019-09/schema#", a spelling jsonschema does not look up
    jsonschema.Draft201909Validator(schema).validate(COMPOSE)


def test_api_service_is_bound_to_loopback_with_a_healthcheck_and_a_named_volume():
    api = COMPOSE["services"]["api"]
    assert api["build"] == "."
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    assert "/api/v1/health" in " ".join(api["healthcheck"]["test"])
    volume, target = api["volumes"][0].split(":")
    assert volume in COMPOSE["volumes"] and target == api["environment"]["GATESCOPE_DATA_DIR"]
    assert api["user"] not in ("0", "root")


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck():
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "GATESCOPE_DATA_DIR=/data" in DOCKERFILE and 'VOLUME ["/data"]' in DOCKERFILE
    assert 'CMD ["gatescope", "serve"]' in DOCKERFILE
