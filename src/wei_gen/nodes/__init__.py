"""One module per pipeline step; each node takes the state (and the run context) and returns only what it changes."""
