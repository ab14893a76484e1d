"""The review side of callqa: the database of calls, suggestions, users and reviews."""
