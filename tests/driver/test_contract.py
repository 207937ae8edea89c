"""Volume id encoding: round trips, delete policy suffixes and malformed ids."""

import pytest

from cfs_csi import contract as volume_id
from cfs_csi.contract import FilesystemVolume, MalformedVolumeId, Share, SubdirVolume
from cfs_csi.controller.params import ParameterError


@pytest.mark.parametrize(
    "volume,encoded",
    [
        (FilesystemVolume("cfs-1a2b3c4d"), "fs:cfs-1a2b3c4d"),
        (FilesystemVolume("cfs-1a2b3c4d", "retain"), "fs:cfs-1a2b3c4d:retain"),
        (SubdirVolume(Share(file_system_id="cfs-1a2b"), "ns/pvc-1"), "subdir:cfs-1a2b:ns/pvc-1"),
        (
            SubdirVolume(Share(server="10.0.0.4", fsid="z3r6k95r"), "pvc-1", "archive"),
            "subdir:10.0.0.4/z3r6k95r:pvc-1:archive",
        ),
    ],
)
def test_round_trip(volume, encoded):
    assert volume.encode() == encoded
    assert volume_id.decode(encoded) == volume


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "fs",
        "fs:",
        "fs:vol-1",
        "fs:cfs-1:delete",
        "fs:cfs-1:archive",
        "fs:cfs-1:retain:x",
        "subdir:cfs-1",
        "subdir:cfs-1:../x",
        "subdir:cfs-1:/abs",
        "subdir:cfs-1:a//b",
        "subdir:cfs-1:a:bogus",
        "subdir:not a share:a",
        "subdir:10.0.0.1/:a",
        "block:cfs-1",
    ],
)
def test_malformed(bad):
    with pytest.raises(MalformedVolumeId):
        volume_id.decode(bad)


def test_too_long_id_is_a_parameter_error():
    with pytest.raises(ParameterError, match="exceed 128 bytes"):
        SubdirVolume(Share(file_system_id="cfs-1"), "a" * 130).encode()
