"""catalens query side: the query engine, the HTTP service and its routes, and the command line."""
