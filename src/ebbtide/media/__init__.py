"""media part (see ARCHITECTURE.md)."""
