"""edgeprune.host.search."""
