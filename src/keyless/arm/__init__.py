"""The resource manager: ids, the generic resource lifecycle, providers and errors."""
