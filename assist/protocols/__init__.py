"""Protocol adapters: each turns one platform's stream into a CallSession's input."""
