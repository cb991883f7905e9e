"""The deployment files are valid: compose config, and well-formed Kubernetes manifests."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

COMPOSE_SERVICES = {"postgres", "redis", "migrate", "gateway", "selection", "quantization-api",
                    "quantization-worker", "training-api", "training-worker", "flower"}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed (.ci/run installs it)")
def test_compose_config_is_valid():
    result = subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_compose_has_every_deployable():
    spec = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert set(spec["services"]) == COMPOSE_SERVICES
    gpu = spec["services"]["quantization-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert spec["services"]["migrate"]["command"] == ["atelier", "db", "upgrade"]


def test_k8s_manifests():
    docs = []
    for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    by_kind: dict[str, set[str]] = {}
    for doc in docs:
        if doc.get("kind") == "Kustomization":
            continue
        by_kind.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    assert {"gateway", "selection", "quantization-api", "training-api", "quantization-worker",
            "training-worker"} <= by_kind["Deployment"]
    assert {"gateway", "selection", "quantization-api", "training-api"} <= by_kind["Service"]
    assert "atelier-migrate" in by_kind["Job"]
    worker = next(d for d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] == "quantization-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
