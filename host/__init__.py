"""edgeprune.host: tasks, compression, the searcher and the CLI."""

__version__ = "0.1.0"
