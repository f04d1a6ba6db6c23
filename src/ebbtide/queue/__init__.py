"""queue part (see ARCHITECTURE.md)."""
