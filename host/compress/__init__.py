"""edgeprune.host.compress."""
