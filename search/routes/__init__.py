"""HTTP routers of the service, one per concern."""
