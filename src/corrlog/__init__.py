"""corrlog: a tamper-evident, searchable record of a freelancer's client correspondence."""

__version__ = "0.1.0"
