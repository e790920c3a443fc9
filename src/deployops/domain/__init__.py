"""Pure model and decisions: stdlib only, no I/O, no clock reads."""
