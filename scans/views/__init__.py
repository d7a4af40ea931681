"""Portal pages, one module per area. The REST API lives in scans.api."""
