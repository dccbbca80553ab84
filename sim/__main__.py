"""``python -m sim``: the ``uksim`` command, run from the source tree it is started in."""

from sim.cli import main

raise SystemExit(main())
