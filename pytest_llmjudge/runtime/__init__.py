"""The per-process runtime below the judge: the judge session (services), the
event loop, and the client (the only importer of litellm)."""
