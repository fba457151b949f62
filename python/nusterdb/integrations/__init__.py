"""Vector-store integrations for LLM frameworks (installed as extras)."""
