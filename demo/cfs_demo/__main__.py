"""`python -m cfs_demo`."""

from cfs_demo.walkthrough import main

raise SystemExit(main())
