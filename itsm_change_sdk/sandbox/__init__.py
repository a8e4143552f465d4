"""The built-in sandbox platform: a small ticket queue on the embedded database."""
