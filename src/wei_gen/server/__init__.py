"""Serving wei-gen: REST endpoints on the LangGraph API server (FastAPI app, token auth, session registry)."""
