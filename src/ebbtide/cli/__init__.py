"""Command line: typer + rich. One module per command group, each with `register(app)`."""
