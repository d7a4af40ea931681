"""REST API v1 (DRF): token or session auth, permissions by role."""
