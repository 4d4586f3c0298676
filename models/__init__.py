"""bpstream.models."""
