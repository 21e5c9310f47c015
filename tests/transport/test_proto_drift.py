"""The committed gRPC/protobuf modules are exactly what the codegen produces from proto/ (no drift), and they
import as part of the ``service`` package."""

from __future__ import annotations

import importlib

import pytest

from service.transport.grpc import codegen


def test_generated_code_matches_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    files = codegen.generate(tmp_path)
    assert files
    for f in files:
        rel = f.relative_to(tmp_path)
        committed = codegen.GEN / rel
        assert committed.exists(), f"{rel} is generated but not committed"
        assert committed.read_text() == f.read_text(), (
            f"{rel} differs from the proto; run: python -m service.transport.grpc.codegen"
        )


def test_generated_code_imports_from_the_package():
    pb2 = importlib.import_module("service.transport.grpc.gen.posesvc.v1.pose_pb2")
    grpc_mod = importlib.import_module("service.transport.grpc.gen.posesvc.v1.pose_pb2_grpc")
    assert pb2.DESCRIPTOR.services_by_name["PoseService"].full_name == "posesvc.v1.PoseService"
    assert hasattr(grpc_mod, "PoseServiceStub")
