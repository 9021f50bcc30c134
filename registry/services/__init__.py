"""Domain services: called by API routes (and later page routes); they add and flush, the request
boundary commits."""
