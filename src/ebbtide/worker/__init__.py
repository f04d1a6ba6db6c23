"""worker part (see ARCHITECTURE.md)."""
