"""`python -m cfs_reference`."""

from cfs_reference.main import main

raise SystemExit(main())
