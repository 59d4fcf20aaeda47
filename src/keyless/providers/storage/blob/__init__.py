"""The Blob service data plane: ``https://{account}.blob.core.windows.net``."""
