"""doctor part (see ARCHITECTURE.md)."""
