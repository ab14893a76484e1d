"""callqa: automatic QA of recorded customer-service calls (batch pipeline)."""

__version__ = "0.1.0"
