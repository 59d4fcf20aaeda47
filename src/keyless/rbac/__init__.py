"""Pure-domain Azure RBAC core: records, scope helpers, action matching, built-in roles, evaluator.

Import from the submodules: ``keyless.rbac.evaluator`` and ``keyless.rbac.builtin_roles``.
"""
