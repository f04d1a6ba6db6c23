"""web part (see ARCHITECTURE.md)."""
