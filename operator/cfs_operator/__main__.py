"""`python -m cfs_operator` runs the operator (same as the `cfs-operator` console script)."""

import sys

from cfs_operator.main import main

sys.exit(main())
