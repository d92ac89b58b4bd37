"""Where entries live: in process (:mod:`.memory`), in Redis (:mod:`.redis`), or both (:mod:`.tiered`)."""
