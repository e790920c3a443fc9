"""The command line: Typer, one module per command group, thin."""
