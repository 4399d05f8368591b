"""Projects, their members and roles, and who may see or change them."""
