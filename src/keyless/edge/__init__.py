"""The network edge: listeners, host routing, the forward proxy and the local CA."""
