"""``python -m swap_action``: the command line (see ``swap_action.cli``)."""

from .cli import main

raise SystemExit(main())
