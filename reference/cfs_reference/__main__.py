from cfs_reference.main import main

raise SystemExit(main())
