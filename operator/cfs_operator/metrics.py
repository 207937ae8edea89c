"""Prometheus metrics of the operator (default registry). Cloud calls are counted by cfs_cloud."""

from prometheus_client import Counter

RECONCILES = Counter(
    "cfs_operator_reconciles_total",
    "Reconciliations by resource kind, trigger (change, drift, selection, delete) and result",
    ["kind", "trigger", "result"],
)
ERRORS = Counter(
    "cfs_operator_errors_total",
    "Failed reconciliations by resource kind and condition reason",
    ["kind", "reason"],
)
DRIFT_REPAIRS = Counter(
    "cfs_operator_drift_repairs_total",
    "Reconciliations that found the cloud changed behind the operator and repaired it",
    ["kind"],
)
CLOUD_CHANGES = Counter(
    "cfs_operator_cloud_changes_total",
    "Cloud changes made by the operator, by resource kind and Event reason",
    ["kind", "reason"],
)
