"""Integration tests: real redis-server, real worker processes."""
