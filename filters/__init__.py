"""bpstream.filters."""
