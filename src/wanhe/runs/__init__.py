"""The application layer: run a job of any kind on this machine (find or resume it by its
fingerprint, build the dispatcher, drive it to the end). `wanhe render`, `wanhe run`,
`wanhe story render` and local `wanhe gen` all go through `wanhe.runs.local`."""
