"""Microsoft Graph v1.0, the slice clients such as the Azure CLI read: directory objects,
service principals, groups and their members, served from ``keyless.directory``."""
