"""edgeprune.host.report."""
