"""Worker-group providers, one per kind of machine pool (see :mod:`.base`)."""
