"""Ways to keep a cache and its source of truth together: aside, read/write-through, write-behind."""
