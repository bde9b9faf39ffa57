"""The application layer: run a job on this machine. `local` finds or resumes a job by its
fingerprint, builds the dispatcher and drives it, for every kind; `gen`, `story` and `openjd`
prepare their kind's job for it (`wanhe gen` without --server, `wanhe story render`,
`wanhe run`), as `wanhe.localrender` does for `wanhe render`."""
