"""Rules: pure functions of records, contracts and `now` (linking, classification, flags)."""
