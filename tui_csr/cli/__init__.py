"""The headless command line: a contract that scripts and the screens rely on.

Exit status: 0 on success; 2 for invalid input (``error:`` on stderr naming the field); 1 for any
other failure (``error:`` too, one sentence, no traceback).

Layout: :mod:`.main` (entry point and dispatch), :mod:`.parser` (the argument parser, built from
the command modules), :mod:`.session` (settings, opening the service, logging in), :mod:`.output`
(JSON, files, terminal-safe text) and one module per command in :mod:`.commands`. Imports are
lazy so ``--version`` and ``list`` start fast.
"""

from tui_csr.cli.main import main

__all__ = ["main"]
