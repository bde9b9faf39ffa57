"""The boundary every task runs in: the project's OS user, a mount namespace that shows the
task only its own files and the farm's software, and a cgroup that holds its memory and
processes and meters its CPU (see docs/security.md)."""
