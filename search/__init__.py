"""catalens query side: the command-line interface (and, next, the query engine and the HTTP service)."""
