"""The network shell: one websockets server for the ingest sockets, event streams and HTTP."""
