"""Fixtures the e2e modules share beyond tests/conftest.py: the attack tests' server whose
outbound fetches may reach loopback, and a local https origin standing for the internet."""

from tests.e2e.job_attack_helpers import origin, private_server

__all__ = ["origin", "private_server"]
