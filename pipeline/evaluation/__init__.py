"""The evaluation harness: callqa's output measured against labelled calls."""
