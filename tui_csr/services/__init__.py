"""The use cases, one part per concern, over one :class:`~.context.ServiceContext`.

:class:`tui_csr.service.CsrService` composes them into the one object the CLI and the TUI call.
No part imports Textual, the UI or the CLI (an import-linter contract keeps it so).
"""
