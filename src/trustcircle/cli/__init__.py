"""The ``trustcircle`` command: one module per command group."""
