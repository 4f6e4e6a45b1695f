"""Small utilities shared across sklearn_mesh."""
