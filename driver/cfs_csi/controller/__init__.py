"""The controller side of the CSI plugin: CreateVolume and friends against the CFS API.

servicer.py (the Controller service: validation, locks, replies), filesystems.py (one file
system per volume), subdir.py (directories of a shared file system), snapshots.py,
pgroups.py (managed permission groups), params.py (StorageClass parameters) and errors.py
(every failure to its gRPC status). It writes what cfs_csi.contract describes and mounts
subdir shares with the node side's mounter; the node never imports this package.
"""
