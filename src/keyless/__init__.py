"""Keyless: a local, wire-compatible implementation of Azure managed identities."""

__version__ = "0.1.0"
