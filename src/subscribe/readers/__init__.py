"""The readers: addresses, signed tokens, the reader use cases, import and export."""
