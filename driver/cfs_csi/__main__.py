"""`python -m cfs_csi`."""

from cfs_csi.main import main

raise SystemExit(main())
