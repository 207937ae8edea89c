"""cfs-operator: the kopf operator for CfsPermissionGroup and CfsAutoSnapshotPolicy."""
