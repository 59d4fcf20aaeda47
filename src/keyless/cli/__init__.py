"""The ``keyless`` command."""
