"""Azure Storage: ``Microsoft.Storage/storageAccounts`` on the resource manager (``accounts``,
``account_names``, ``account_keys``, ``account_operations``) and the blob data plane (``blob``)."""
