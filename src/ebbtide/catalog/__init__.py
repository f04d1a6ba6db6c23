"""catalog part (see ARCHITECTURE.md)."""
