"""The thin async shell: composition root, ticks, scheduling, events, leases and state."""
