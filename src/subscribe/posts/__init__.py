"""Posts: where they come from (flags, Markdown, feeds), announcing them, the notify use case."""
