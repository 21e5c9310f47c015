"""Schemathesis against the live server's OpenAPI schema (``/openapi.json``): generated requests for every
operation, check ``not_a_server_error`` (no 5xx). Skipped when schemathesis is not installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_summary

MAX_EXAMPLES = os.environ.get("POSESVC_SCHEMATHESIS_EXAMPLES", "25")


def test_schemathesis_no_server_errors(rel_server, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "schemathesis"
    if not exe.exists():
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    cmd = [str(exe), "run", rel_server.http + "/openapi.json", "--checks", "not_a_server_error",
           "--max-examples", MAX_EXAMPLES, "--request-timeout", "60", "--workers", "1", "--seed", "1",
           "--phases", "examples,coverage,fuzzing", "--no-color"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = r.stdout + r.stderr
    m = re.search(r"(\d+) generated", out)
    cases = int(m.group(1)) if m else None
    (tmp_path / "schemathesis.log").write_text(out)
    tail = [ln for ln in out.splitlines() if re.search(r"generated|passed|Operations|Test cases", ln)]
    write_summary("schemathesis", {"exit_code": r.returncode, "test_cases": cases,
                                   "max_examples": int(MAX_EXAMPLES), "summary": tail[-6:]})  # fmt: skip
    assert r.returncode == 0, out[-4000:]
