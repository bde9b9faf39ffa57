"""Task executors: what a worker runs for each task kind, one module per executor, found
through `registry.executor_class(kind)` (built-ins and plugins alike)."""
