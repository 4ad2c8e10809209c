"""`python -m broadcaster`: the same CLI as the `broadcaster` console script."""

from broadcaster.cli import main

raise SystemExit(main())
