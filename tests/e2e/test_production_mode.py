"""Production mode (PIAOJUE_ENV=production, the default in deploy/): every service refuses to
start without keys, with the development key, or with the deployment files' placeholders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from piaojue.services import all_services
from shared import service as service_module
from shared import tokens
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEVELOPMENT = tokens.DEVELOPMENT_KEYS["EdDSA"]


@pytest.mark.parametrize("service", all_services(), ids=lambda s: s.name)
@pytest.mark.parametrize(("env", "why"), [
    ({"auth_jwks": "", "auth_signing_key": ""}, "PIAOJUE_AUTH_JWKS is not set"),
    ({"auth_jwks": json.dumps({"keys": [tokens.public_jwk(DEVELOPMENT)]}), "auth_signing_key": json.dumps(DEVELOPMENT)},
     "development key"),
], ids=["no-keys", "development-key"])
def test_every_service_refuses_to_start_in_production_without_real_keys(monkeypatch, service, env, why):
    """``python -m services.<name>`` (its main()) stops before serving anything."""
    monkeypatch.setattr(service_module, "get_settings", lambda: Settings(env="production", **env))
    monkeypatch.setattr(sys, "argv", [f"services.{service.name}"])
    with pytest.raises(SystemExit) as refused:
        service_module.main(service)
    assert "refusing to start in production mode" in str(refused.value) and why in str(refused.value)


def test_a_service_process_refuses_the_deployment_files_placeholders():
    placeholders = {}
    for name in ("secret.yaml", "config.yaml"):
        for doc in yaml.safe_load_all((ROOT / "deploy/k8s" / name).read_text(encoding="utf-8")):
            placeholders |= doc.get("stringData", {}) | doc.get("data", {})
    env = {**os.environ, **placeholders}
    proc = subprocess.run([sys.executable, "-m", "services.identity"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "refusing to start in production mode" in proc.stderr and "placeholder" in proc.stderr, proc.stderr[-800:]
