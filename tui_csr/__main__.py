"""`python -m tui_csr` runs the command line."""

from tui_csr.cli import main

raise SystemExit(main())
