"""Workloads (VMs, Function apps) and the identity endpoints they get their tokens from."""
