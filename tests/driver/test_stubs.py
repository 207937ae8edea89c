"""The checked-in CSI stubs are exactly what `make stubs` generates from proto/csi.proto."""

import filecmp
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STUB_FILES = ("csi_pb2.py", "csi_pb2.pyi", "csi_pb2_grpc.py")


def test_checked_in_stubs_match_a_fresh_generation(tmp_path):
    # Same invocation as the Makefile's `stubs` target, into a temporary tree.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "--proto_path=cfs_csi/csipb=proto",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            "proto/csi.proto",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    fresh = tmp_path / "cfs_csi" / "csipb"
    checked_in = REPO / "driver" / "cfs_csi" / "csipb"
    stale = [name for name in STUB_FILES if not filecmp.cmp(fresh / name, checked_in / name, shallow=False)]
    assert not stale, (
        f"stubs differ from what grpcio-tools {version('grpcio-tools')} generates: "
        f"{stale}; run `make stubs` (and pin grpcio-tools to that version)"
    )


def test_stubs_import_as_a_package_with_every_csi_service():
    from cfs_csi.csipb import csi_pb2, csi_pb2_grpc

    assert csi_pb2.DESCRIPTOR.package == "csi.v1"
    assert set(csi_pb2.DESCRIPTOR.services_by_name) == {
        "Identity",
        "Controller",
        "GroupController",
        "SnapshotMetadata",
        "Node",
    }
    for service in ("Identity", "Controller", "GroupController", "Node"):
        assert hasattr(csi_pb2_grpc, f"{service}Servicer")
        assert hasattr(csi_pb2_grpc, f"add_{service}Servicer_to_server")


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        ("CreateVolumeRequest", "secrets", 5),
        ("CreateVolumeRequest", "mutable_parameters", 8),
        ("ControllerModifyVolumeRequest", "mutable_parameters", 3),
        ("NodePublishVolumeRequest", "volume_context", 8),
        ("Snapshot", "group_snapshot_id", 6),
        ("GetMetadataDeltaRequest", "secrets", 5),
    ],
)
def test_field_numbers_follow_the_spec(message, field, number):
    from cfs_csi.csipb import csi_pb2

    assert csi_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name[field].number == number


def test_every_secrets_field_carries_the_csi_secret_option():
    """The interceptor and any CO rely on csi_secret to know what never to log."""
    from cfs_csi.csipb import csi_pb2

    secret_fields = [
        f"{message.name}.{field.name}"
        for message in csi_pb2.DESCRIPTOR.message_types_by_name.values()
        for field in message.fields
        if field.name == "secrets"
    ]
    assert len(secret_fields) >= 15
    for path in secret_fields:
        message_name, field_name = path.split(".")
        options = (
            csi_pb2.DESCRIPTOR.message_types_by_name[message_name].fields_by_name[field_name].GetOptions()
        )
        assert options.Extensions[csi_pb2.csi_secret], path


def test_capability_enums_carry_the_current_values():
    from cfs_csi.csipb import csi_pb2

    rpc = csi_pb2.ControllerServiceCapability.RPC
    assert (rpc.MODIFY_VOLUME, rpc.GET_SNAPSHOT) == (14, 15)
    service = csi_pb2.PluginCapability.Service
    assert (service.GROUP_CONTROLLER_SERVICE, service.SNAPSHOT_METADATA_SERVICE) == (3, 4)
    mode = csi_pb2.VolumeCapability.AccessMode
    assert mode.SINGLE_NODE_MULTI_WRITER == 7
