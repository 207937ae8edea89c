"""The operator's tests run kopf against kmock, an in-memory Kubernetes API (tests/support/kube.py)."""

from tests.support.kube import cluster, kube

__all__ = ["cluster", "kube"]
