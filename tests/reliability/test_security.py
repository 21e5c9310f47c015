"""Per-client stream limit (RESOURCE_EXHAUSTED ``stream_limit`` + retry hint, counted) and optional TLS on both
transports (a self-signed certificate made in the test, loopback only)."""

from __future__ import annotations

import queue
import ssl
import time

import grpc
import httpx
import pytest

from service.transport.grpc.gen.posesvc.v1 import pose_pb2
from tests.transport.conftest import start_server, stop_server

from .conftest import estimate_request, self_signed, small_jpeg, stub

LIMIT = 2


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, small_card_path, small_weights):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(tmp)
    env = {
        "POSESVC_TLS_CERT_FILE": str(cert),
        "POSESVC_TLS_KEY_FILE": str(key),
        "POSESVC_MAX_STREAMS_PER_CLIENT": str(LIMIT),
    }
    srv = start_server(tmp, small_card_path, small_weights, extra_env=env, tls_ca=cert)
    yield srv, cert
    stop_server(srv)


class _Stream:
    """One open StreamEstimate call fed from a queue (None ends it)."""

    def __init__(self, stub_: object, image: bytes) -> None:
        self.q: queue.Queue[object] = queue.Queue()
        self.image = image

        def gen():
            n = 0
            while True:
                item = self.q.get()
                if item is None:
                    return
                f = pose_pb2.Frame(frame_id=n, image=self.image, use_boxes=True)
                f.boxes.add(x=10, y=10, w=100, h=200)
                if n == 0:
                    f.options.CopyFrom(pose_pb2.StreamOptions(pose=pose_pb2.PoseOptions(flip=False)))
                n += 1
                yield f

        self.call = stub_.StreamEstimate(gen(), timeout=60)  # type: ignore[attr-defined]
        self.answers = iter(self.call)

    def frame(self) -> object:
        self.q.put(1)
        return next(self.answers)

    def close(self) -> None:
        self.q.put(None)
        for _ in self.answers:
            pass


def test_tls_and_stream_limit(tls_server) -> None:
    srv, cert = tls_server
    https = srv.http
    assert https.startswith("https://")
    ctx = ssl.create_default_context(cafile=str(cert))
    # HTTPS with the certificate; plain HTTP on the same port is refused
    r = httpx.get(https + "/readyz", verify=ctx, timeout=10)
    assert r.status_code == 200
    with pytest.raises(httpx.HTTPError):
        httpx.get(https.replace("https://", "http://") + "/readyz", timeout=5)
    img = small_jpeg()
    r = httpx.post(https + "/v1/pose", content=img, headers={"Content-Type": "image/jpeg"},
                   params={"boxes": "[[10,10,100,200]]"}, verify=ctx, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text

    # gRPC over TLS; an insecure channel cannot talk to it
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    ch, pose = stub(srv.grpc, creds)
    assert pose.Estimate(estimate_request(img), timeout=60).persons is not None
    bad_ch, bad = stub(srv.grpc)
    with pytest.raises(grpc.RpcError) as ei:
        bad.Estimate(estimate_request(img), timeout=5)
    assert ei.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    bad_ch.close()

    # per-client stream limit: LIMIT streams open, the next one is refused with a clear status + retry hint
    streams = [_Stream(pose, img) for _ in range(LIMIT)]
    for s in streams:
        assert s.frame().outcome == pose_pb2.PROCESSED  # type: ignore[attr-defined]
    extra = _Stream(pose, img)
    with pytest.raises(grpc.RpcError) as ei:
        extra.frame()
    err = ei.value
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "stream_limit" in err.details()  # type: ignore[attr-defined]
    assert dict(err.trailing_metadata()).get("retry-after-ms")  # type: ignore[attr-defined]
    # the open streams are unaffected; after one closes a new stream is accepted
    assert streams[0].frame().outcome == pose_pb2.PROCESSED  # type: ignore[attr-defined]
    streams[0].close()
    deadline = time.monotonic() + 10
    while True:
        again = _Stream(pose, img)
        try:
            assert again.frame().outcome == pose_pb2.PROCESSED  # type: ignore[attr-defined]
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline, "stream slot not freed after close"
            time.sleep(0.2)
    again.close()
    streams[1].close()
    m = httpx.get(https + "/metrics", verify=ctx, timeout=10).text
    line = next(
        x for x in m.splitlines() if x.startswith('posesvc_requests_rejected_total{reason="stream_limit"}')
    )
    assert float(line.split()[-1]) >= 1
    ch.close()


def test_tls_settings_need_both_files(tmp_path) -> None:
    from pydantic import ValidationError

    from service.settings import Settings

    with pytest.raises(ValidationError, match="together"):
        Settings(tls_cert_file=tmp_path / "c.pem")
    s = Settings(tls_cert_file=tmp_path / "c.pem", tls_key_file=tmp_path / "k.pem")
    assert s.tls_enabled and not Settings().tls_enabled
    assert Settings().max_streams_per_client == 8


def test_client_identity_is_key_digest_or_peer_host() -> None:
    from service.transport.grpc.interceptors import client_identity

    class Ctx:
        def __init__(self, md, peer):
            self.md, self._peer = md, peer

        def invocation_metadata(self):
            return self.md

        def peer(self):
            return self._peer

    a = client_identity(Ctx((("x-api-key", "secret"),), "ipv4:127.0.0.1:5000"))
    b = client_identity(Ctx((("authorization", "Bearer secret"),), "ipv4:10.0.0.2:6000"))
    assert a == b and a.startswith("key:") and "secret" not in a
    assert client_identity(Ctx((), "ipv4:127.0.0.1:5000")) == client_identity(Ctx((), "ipv4:127.0.0.1:6001"))
    assert client_identity(Ctx((), "ipv6:[::1]:5000")) == "ipv6:[::1]"
