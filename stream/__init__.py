"""bpstream.stream."""
