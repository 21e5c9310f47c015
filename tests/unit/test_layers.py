"""Import boundaries, checked on the source: transports import only the shared modules (schemas, errors,
settings, observability), the engine's client protocol and the streaming sessions that run on it: never the
pipeline, networks, codecs, backends or estimators (``if TYPE_CHECKING:`` imports for annotations aside)."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"
ALLOWED = ("service.schemas", "service.errors", "service.settings", "service.observability",
           "service.engine.protocol", "service.streaming", "service.transport")  # fmt: skip


def runtime_imports(path: Path) -> list[str]:
    """Absolute ``service...`` modules imported by ``path`` outside ``if TYPE_CHECKING:`` blocks."""
    package = ".".join(path.relative_to(SERVICE.parent).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text())
    skipped = {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }  # fmt: skip
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            out += [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return [m for m in out if m == "service" or m.startswith("service.")]


def test_transports_import_only_the_client_protocol_and_shared_modules():
    files = [p for p in (SERVICE / "transport").rglob("*.py") if "gen" not in p.relative_to(SERVICE).parts]
    assert len(files) >= 8
    bad = {
        f"{p.relative_to(SERVICE)}: {m}" for p in files for m in runtime_imports(p)
        if m not in ("service", "service.__version__") and not m.startswith(ALLOWED)
    }  # fmt: skip
    assert not bad, sorted(bad)


def test_the_check_sees_a_violation(tmp_path):
    probe = SERVICE / "transport" / "http" / "pose.py"
    text = probe.read_text() + "\nfrom ...pipeline.render import render_poses\n"
    fake = tmp_path / "service" / "transport" / "http" / "pose.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(text)
    import tests.unit.test_layers as me

    old = me.SERVICE
    me.SERVICE = tmp_path / "service"
    try:
        assert "service.pipeline.render" in runtime_imports(fake)
    finally:
        me.SERVICE = old
