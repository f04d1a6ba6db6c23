"""sim part (see ARCHITECTURE.md)."""
