"""Resource providers: each owns its resource types, tables and domain logic."""
