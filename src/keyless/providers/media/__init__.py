"""Microsoft.Media: Media Services accounts, their customer-managed keys and storage, and child resources."""
