"""cfs-reference: a reference implementation of the CFS API with a real NFS data plane."""
