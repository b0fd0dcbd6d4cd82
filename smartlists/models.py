"""Smart lists and trigger campaigns arrive in a later stage (product.md §2 and §3)."""
