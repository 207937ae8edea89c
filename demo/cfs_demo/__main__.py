from cfs_demo.walkthrough import main

raise SystemExit(main())
