"""edgeprune.host.tasks."""
