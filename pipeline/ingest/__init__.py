"""Ingest: find the conversations to process (folders, manifests) and read them (audio decoding
and header checks); ``sources`` turns each into the utterance stream the analysis takes."""
