"""The directory: one home for tenants, principals (service principals, app registrations with
their identifier URIs, managed identities), groups and their members.

The authority, RBAC, Microsoft Graph (``keyless.graph``) and ``keyless ad`` all read and write it
through this package: ``principals`` and ``groups`` work on a connection, ``Directory`` (in
``tenants``) holds the instance-level operations.
"""

from keyless.directory.tenants import AdminCredentials, Directory

__all__ = ["AdminCredentials", "Directory"]
