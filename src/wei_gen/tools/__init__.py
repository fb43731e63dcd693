"""Deterministic tools the pipeline's nodes use: the workflow validator (and later z3 checker, retriever, sandbox)."""
