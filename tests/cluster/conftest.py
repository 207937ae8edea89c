"""The cluster lane's fixtures: one real control plane (etcd, kube-apiserver,
kube-controller-manager, snapshot-controller) per test module, and the chart installed on it with
its controller and operator pods running against a reference CFS service."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chart_lane import Lane, lane_values, running_lane
from tests.support.control_plane import ControlPlane, running_control_plane
from tests.support.reference import running_reference

# Reference create delay of the scenarios: long enough that CreateVolume really waits.
CREATE_DELAY = 0.5


@pytest.fixture(scope="module")
def short_dir() -> Iterator[Path]:
    """A short working directory: unix socket paths under it must stay below 108 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="cfs-lane-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def control_plane(short_dir) -> Iterator[ControlPlane]:
    with running_control_plane(short_dir / "plane", controllers=True) as plane:
        yield plane


@pytest.fixture(scope="module")
def lane_reference(short_dir):
    with running_reference(short_dir / "reference", create_delay=CREATE_DELAY, nfs="off") as ref:
        yield ref


@pytest.fixture(scope="module")
def lane(control_plane, lane_reference, short_dir) -> Iterator[Lane]:
    """The chart installed; one controller pod and the operator pod running."""
    pods = {"cfs-csi-controller-0": "controller", "cfs-csi-operator-0": "operator"}
    with running_lane(control_plane, lane_reference, lane_values(lane_reference), short_dir / "pods",
                      ["node-a", "node-b"], pods) as running:  # fmt: skip
        yield running
