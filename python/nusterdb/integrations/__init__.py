"""Adapters that expose NusterDB to other frameworks (installed with their extras)."""
