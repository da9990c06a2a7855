"""Demo data and demo feature definitions."""
