"""TODO: one to three sentences on what this package holds."""
