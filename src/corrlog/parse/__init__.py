"""Parsers: raw item bytes in, plain data out (pure, no I/O)."""
