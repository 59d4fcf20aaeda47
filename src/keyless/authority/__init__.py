"""The token authority: principals, signing keys, token minting and validation, OIDC."""
