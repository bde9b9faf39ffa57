"""The Blender render domain: what a render job is (its spec, the options a user asks for,
the facts read from a scene) and the typed payloads of its tasks. The job type
(`wanhe.jobtypes.blender_render`) adapts them to the farm; the engine's executors run them."""
