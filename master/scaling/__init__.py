"""Worker groups: the scaler and the providers that start and stop workers."""
