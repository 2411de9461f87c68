"""The bottom layer: registries, errors, paths, messages, row types."""
