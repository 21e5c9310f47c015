"""The README runs: every example marked ``<!-- readme-test: run -->`` is executed, as written, against a live
``posesvc serve --allow-untrained`` on loopback (default card, seeded untrained weights, so the numbers
reproduce in any process), in a folder holding the sample photo; its output must match the
``<!-- readme-test: output -->`` block that follows it.

Matching: ``...`` stands for anything (abridged output), whitespace is free, and every number shown must
equal the one printed within half a unit of its last shown digit (integers exactly). Ports are the test's.
``POSESVC_README_SHOW=1`` prints each example's actual output (to refresh the README from a run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.transport.conftest import REPO, start_server, stop_server

README = REPO / "README.md"
RUN = "<!-- readme-test: run -->"
OUTPUT = "<!-- readme-test: output -->"
FENCE = re.compile(r"```(\w*)\n(.*?)\n```", re.S)
NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


@dataclass
class Example:
    line: int
    lang: str
    code: str
    expected: str


def examples(text: str) -> list[Example]:
    """The runnable examples of ``text`` with their expected output (a run block must be followed by one)."""
    out = []
    for m in re.finditer(re.escape(RUN) + r"\s*\n", text):
        code = FENCE.match(text, m.end())
        assert code, f"README line {text.count(chr(10), 0, m.start()) + 1}: {RUN} must precede a code block"
        rest = text[code.end() :].lstrip()
        assert rest.startswith(OUTPUT), f"README: the example at {code.group(2)[:40]!r} has no {OUTPUT} block"
        body = FENCE.match(rest, len(OUTPUT) + (len(rest[len(OUTPUT) :]) - len(rest[len(OUTPUT) :].lstrip())))
        assert body, "README: the output marker must precede a code block"
        out.append(Example(text.count("\n", 0, m.start()) + 1, code.group(1), code.group(2), body.group(2)))
    return out


def matches(expected: str, actual: str) -> tuple[bool, str]:
    """Whether ``actual`` is ``expected`` with ``...`` wildcards, free whitespace and numbers as shown."""
    regex: list[str] = []
    shown: list[str] = []
    for part in re.split(r"(\.\.\.|" + NUM + r"|\s+)", expected.strip()):
        if not part:
            continue
        if part == "...":
            regex.append(r".*?")
        elif part.isspace():
            continue  # whitespace is free everywhere (see the join below)
        elif re.fullmatch(NUM, part):
            regex.append(f"({NUM})")
            shown.append(part)
        else:  # punctuation may be spaced out differently (pretty-printed JSON): whitespace free inside too
            regex.append(r"\s*".join(re.escape(c) for c in part))
    m = re.fullmatch(r"\s*".join(regex), actual.strip(), re.S)
    if m is None:
        return False, "the text does not match"
    for want, got in zip(shown, m.groups(), strict=True):
        decimals = len(want.split(".")[1]) if "." in want and "e" not in want.lower() else 0
        tol = 0.5 * 10.0**-decimals if decimals else 0.0
        if "e" in want.lower():
            tol = abs(float(want)) * 1e-3
        if abs(float(got) - float(want)) > tol + 1e-12:
            return False, f"the README shows {want}, the run printed {got}"
    return True, ""


@pytest.fixture(scope="module")
def live(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("readme")
    srv = start_server(
        tmp, card=None, weights=None,
        extra_env={"POSESVC_ENGINE__WARMUP": "false", "POSESVC_ENGINE__QUEUE_SIZE": "64"},
        default_detector=True,
    )  # fmt: skip
    work = tmp / "work"
    work.mkdir()
    for name in ("000000000785.jpg",):
        shutil.copyfile(data_dir / "coco_samples" / name, work / name)
    yield srv, work
    stop_server(srv)


def _localise(text: str, http_port: str, grpc_port: str) -> str:
    text = re.sub(r"(localhost|127\.0\.0\.1):8000", rf"\g<1>:{http_port}", text)
    return re.sub(r"(localhost|127\.0\.0\.1):50051", rf"\g<1>:{grpc_port}", text)


def test_readme_examples_run_as_written(live):
    srv, work = live
    http_port = srv.http.rsplit(":", 1)[1]
    grpc_port = srv.grpc.rsplit(":", 1)[1]
    found = examples(README.read_text())
    assert len(found) >= 5  # REST multipart + raw, errors, gRPC CLI, Python client
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    failures = []
    for ex in found:
        code = _localise(ex.code, http_port, grpc_port)
        if ex.lang == "python":
            cmd = [sys.executable, "-c", code]
        else:
            assert ex.lang in ("bash", "sh"), f"README line {ex.line}: cannot run a {ex.lang!r} block"
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
        if os.environ.get("POSESVC_README_SHOW"):
            print(f"\n--- README line {ex.line} ---\n{r.stdout}{r.stderr}")
        if r.returncode != 0:
            failures.append(f"README line {ex.line}: exit {r.returncode}: {r.stderr[-500:]}")
            continue
        ok, why = matches(_localise(ex.expected, http_port, grpc_port), r.stdout)
        if not ok:
            failures.append(f"README line {ex.line}: {why}\n  printed: {r.stdout[:800]}")
    assert not failures, "\n".join(failures)


def test_matcher_can_fail():
    assert matches('{"x": 421.49, ...}', '{"x":421.49,"y":3}')[0]
    assert matches('{"x": 421.49, ...}', '{"x":421.494,"y":3}')[0]  # shown to 2 decimals
    assert not matches('{"x": 421.49, ...}', '{"x":421.51,"y":3}')[0]
    assert not matches('{"n": 1}', '{"n": 2}')[0]
    assert not matches('{"a": 1}', '{"b": 1}')[0]
