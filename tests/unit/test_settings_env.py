"""Settings: env vars (nested with ``__``) reach the typed fields, and every ``POSESVC_*`` variable the
deployment files set names a real setting (a typo would be silently ignored by pydantic-settings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_nested_env(monkeypatch):
    monkeypatch.setenv("POSESVC_ENGINE__QUEUE_SIZE", "7")
    monkeypatch.setenv("POSESVC_MODEL__CARD", "hrnet_w48_384x288_darkpose")
    monkeypatch.setenv("POSESVC_API_KEY_HASHES", '["' + "a" * 64 + '"]')
    s = Settings()
    assert s.engine.queue_size == 7 and s.model.card == "hrnet_w48_384x288_darkpose"
    assert s.api_key_hashes == ["a" * 64]


def test_bad_device_is_refused(monkeypatch):
    monkeypatch.setenv("POSESVC_DEVICE", "tpu")
    with pytest.raises(ValueError, match="device"):
        Settings()


def _known(name: str) -> bool:
    parts = name[len("POSESVC_") :].lower().split("__")
    model = Settings
    for i, p in enumerate(parts):
        fields = model.model_fields
        if p not in fields:
            return False
        ann = fields[p].annotation
        if i < len(parts) - 1:
            if not (isinstance(ann, type) and hasattr(ann, "model_fields")):
                return False
            model = ann
    return True


@pytest.mark.parametrize(
    "path",
    [
        "docker-compose.yml",
        "helm/posesvc/templates/configmap.yaml",
        "deploy/k8s/posesvc.yaml",
        "docker/Dockerfile.cpu",
    ],
)
def test_deployment_env_vars_are_settings(path):
    text = (REPO / path).read_text()
    names = set(re.findall(r"\b(POSESVC_[A-Z0-9_]+)\b", text))
    names.discard("POSESVC_")
    assert names, path
    unknown = sorted(n for n in names if not _known(n))
    assert not unknown, f"{path} sets unknown settings: {unknown}"
