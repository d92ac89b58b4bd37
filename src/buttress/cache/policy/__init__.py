"""Admission and eviction for the in-process cache: what stays when memory is full.

* :class:`WTinyLfuPolicy` — adaptive Window-TinyLFU, the default: a recency window, a frequency sketch
  that admits a newcomer only if it is more popular than the entry it would displace, a segmented-LRU
  main space, and a hill climber that sizes the window to the workload.
* :class:`LruPolicy` — plain least-recently-used, the baseline.
* :class:`FrequencySketch` and :class:`HillClimber` — the two parts of W-TinyLFU, usable alone.

The store (:class:`buttress.cache.backends.memory.MemoryStore`) drives a policy through the
:class:`Policy` protocol; users pick one by name (``policy="tinylfu"`` or ``"lru"``).
"""

from buttress.cache.policy.base import EvictFn, Policy
from buttress.cache.policy.climber import HillClimber
from buttress.cache.policy.entry import Entry
from buttress.cache.policy.lru import LruPolicy
from buttress.cache.policy.sketch import FrequencySketch
from buttress.cache.policy.tinylfu import WTinyLfuPolicy

__all__ = ["Entry", "EvictFn", "FrequencySketch", "HillClimber", "LruPolicy", "Policy", "WTinyLfuPolicy"]
