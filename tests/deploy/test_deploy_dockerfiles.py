"""docker/Dockerfile.{cpu,cuda} pass hadolint and keep the image contract; .dockerignore is sane."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DOCKERFILES = ["docker/Dockerfile.cpu", "docker/Dockerfile.cuda"]


def _hadolint(tool: Callable[[str], str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_passes(tool: Callable[[str], str], repo_root: Path, dockerfile: str) -> None:
    proc = _hadolint(tool, repo_root / dockerfile)
    assert proc.returncode == 0, f"hadolint {dockerfile}:\n{proc.stdout}{proc.stderr}"


def test_hadolint_flags_a_bad_dockerfile(tool: Callable[[str], str], tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    proc = _hadolint(tool, bad)
    assert proc.returncode != 0 and "DL3006" in proc.stdout


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_image_contract(repo_root: Path, dockerfile: str) -> None:
    ins = _instructions((repo_root / dockerfile).read_text())
    by = lambda name: [args for word, args in ins if word == name]  # noqa: E731
    froms = by("FROM")
    assert len(froms) >= 2 and any(" AS builder" in f for f in froms), "multi-stage with a builder"
    final_stage = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    final = ins[final_stage:]
    final_by = lambda name: [args for word, args in final if word == name]  # noqa: E731
    # The final stage copies the venv from the builder and installs no build tools.
    assert any("--from=builder /opt/venv" in c for c in final_by("COPY"))
    assert not any(re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", r) for r in final_by("RUN"))
    assert not any(re.search(r"\bpip\b.*\binstall\b", r) for r in final_by("RUN"))
    user = final_by("USER")
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    assert final_by("EXPOSE") == ["8000 50051"]
    assert 'VOLUME ["/var/cache/posesvc"]' in [f"VOLUME {v}" for v in final_by("VOLUME")]
    assert any("POSESVC_WEIGHTS_DIR=/var/cache/posesvc" in e for e in final_by("ENV"))
    health = final_by("HEALTHCHECK")
    assert health and "http://127.0.0.1:8000/healthz" in health[0] and "urllib" in health[0]
    assert final_by("ENTRYPOINT") == ['["posesvc"]']
    assert final_by("CMD") == ['["serve", "--host", "0.0.0.0"]']
    labels = " ".join(final_by("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    # Weights are never baked in.
    assert not any(re.search(r"\.(pth|pt|safetensors)\b", args) for _, args in ins)
    assert not any("weights fetch" in r for r in by("RUN"))


def test_cpu_image_uses_cpu_torch_wheels(repo_root: Path) -> None:
    text = (repo_root / "docker/Dockerfile.cpu").read_text()
    assert "https://download.pytorch.org/whl/cpu" in text


def test_dockerignore(repo_root: Path) -> None:
    patterns = [
        ln.strip()
        for ln in (repo_root / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    for required in (".venv", ".git", "**/*.pth", "**/*.pt", "**/*.safetensors", ".pytest_cache"):
        assert required in patterns, required
    # Nothing the Dockerfiles COPY from the context is excluded.
    copied = {"pyproject.toml", "README.md", "service", "models", "proto"}
    for dockerfile in DOCKERFILES:
        for word, args in _instructions((repo_root / dockerfile).read_text()):
            if word == "COPY" and "--from=" not in args:
                sources = args.split()[:-1]
                assert set(sources) <= copied, sources
    assert not copied & set(patterns)
