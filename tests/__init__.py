"""hf_ser's tests, grouped like the source; shared tiny factories live in `tests.tiny`."""
