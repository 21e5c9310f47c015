"""The ``posesvc`` command line: predict JSON/COCO output and render; weights fetch/import/verify."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from service.cli.main import main

IMG = "coco_samples/000000196141.jpg"


def test_predict_json_and_render(data_dir, small_card_path, small_weights, tmp_path, capsys):
    out_png = tmp_path / "r.png"
    rc = main(["predict", str(data_dir / IMG), "--card", str(small_card_path), "--weights", str(small_weights),
               "--boxes", "[[100, 50, 200, 300, 0.9], [300, 60, 150, 320]]", "--render", str(out_png)])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == {"name": "darkpose_small_fixture", "trained": True}
    assert doc["image_size"] == {"width": 640, "height": 429}
    assert doc["boxes_source"] == "client" and doc["detector"] is None
    assert 1 <= len(doc["persons"]) <= 2
    kp = doc["persons"][0]["keypoints"]
    assert [k["name"] for k in kp][:3] == ["nose", "left_eye", "right_eye"] and len(kp) == 17
    assert out_png.stat().st_size > 1000


def test_predict_coco_format(data_dir, small_card_path, small_weights, capsys):
    rc = main(["predict", str(data_dir / IMG), "--card", str(small_card_path), "--weights", str(small_weights),
               "--boxes", "[[100, 50, 200, 300, 0.9]]", "--format", "coco", "--image-id", "196141"])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["image_id"] == 196141 and doc[0]["category_id"] == 1 and len(doc[0]["keypoints"]) == 51


def test_predict_bad_boxes_is_a_clear_error(data_dir, small_card_path, small_weights, capsys):
    rc = main(["predict", str(data_dir / IMG), "--card", str(small_card_path), "--weights", str(small_weights),
               "--boxes", "[[10, 10, -5, 20]]"])  # fmt: skip
    assert rc == 2
    assert "non-positive" in capsys.readouterr().err


def _card_with_url(tmp_path, fixtures_dir, url, sha):
    from tests.conftest import small_card_toml

    text = small_card_toml(fixtures_dir).replace(
        'format = "darkpose"\nfilename = "small_model_state_dict.pt"',
        f'format = "darkpose"\nfilename = "small.pth"\nurl = "{url}"\nsha256 = "{sha}"',
    )
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_weights_fetch_offline_is_one_line(tmp_path, fixtures_dir):
    # 127.0.0.1:9 (discard) is closed here: the same failure mode as a machine without internet
    card = _card_with_url(tmp_path, fixtures_dir, "http://127.0.0.1:9/small.pth", "0" * 64)
    r = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "weights", "fetch", "--card", str(card),
         "--weights-dir", str(tmp_path / "w"), "--no-progress"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "cannot download" in lines[0]


def test_weights_import_and_verify_detects_corruption(tmp_path, fixtures_dir, small_weights, capsys):
    from service.pipeline.weights import sha256_file

    card = _card_with_url(tmp_path, fixtures_dir, "http://127.0.0.1:9/small.pth", sha256_file(small_weights))
    wdir = tmp_path / "w"
    assert (
        main(["weights", "import", str(small_weights), "--card", str(card), "--weights-dir", str(wdir)]) == 0
    )
    assert main(["weights", "verify", "--card", str(card), "--weights-dir", str(wdir)]) == 0
    assert "matches card" in capsys.readouterr().out
    cached = wdir / "small.pth"
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cached.write_bytes(bytes(data))
    assert main(["weights", "verify", "--card", str(card), "--weights-dir", str(wdir)]) == 2
    assert "does not match" in capsys.readouterr().err


def test_weights_import_refuses_a_foreign_checkpoint(tmp_path, fixtures_dir):
    import torch

    card = _card_with_url(tmp_path, fixtures_dir, "", "")
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, bad)
    with pytest.raises(Exception, match="missing key"):
        from service.pipeline.card import load_card
        from service.pipeline.weights import import_weights

        import_weights(load_card(card), bad, tmp_path / "w")


def test_fetch_verifies_hash_and_deletes_mismatch(tmp_path, fixtures_dir, small_weights):
    """A real download over loopback (http.server): right hash is kept, wrong hash is deleted."""
    import functools
    import http.server
    import threading

    from service.errors import WeightsError
    from service.pipeline.card import load_card
    from service.pipeline.weights import fetch, sha256_file

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(small_weights.parent))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/{small_weights.name}"
        good = load_card(_card_with_url(tmp_path, fixtures_dir, url, sha256_file(small_weights)))
        path = fetch(good, tmp_path / "w", progress=False)
        assert sha256_file(path) == sha256_file(small_weights)
        (tmp_path / "w2").mkdir()
        bad = load_card(_card_with_url(tmp_path, fixtures_dir, url, "deadbeef" * 8))
        with pytest.raises(WeightsError, match="sha256 mismatch"):
            fetch(bad, tmp_path / "w2", progress=False)
        assert list((tmp_path / "w2").iterdir()) == []
    finally:
        srv.shutdown()


def test_cli_limits_openblas_threads_before_numpy_loads():
    """torch owns the cores: the CLI pins NumPy's OpenBLAS to one thread unless the environment says otherwise,
    and it does so before NumPy is imported (later it would have no effect)."""
    import os
    import subprocess
    import sys

    code = "import sys, os, service.cli; print('numpy' in sys.modules, os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "1"]
    env["OPENBLAS_NUM_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "3"]
