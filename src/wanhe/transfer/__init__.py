"""Moving a scene to a farm, once for every client: the wording of a farm's refusals
(`refusal`), packing a scene with blender-asset-tracer, hashing it and uploading what the
farm lacks (`pack`), over a transport each client brings (`pack.Transport`: the CLI's httpx
`Client`, the add-on's urllib `Farm`).

Standard library and blender-asset-tracer only, and only relative imports inside this
package: `wanhe addon build` copies these files byte for byte into the Blender add-on's zip
(`wanhe_farm/_transfer/`), whose Python has none of wanhe's dependencies and no wanhe.
Python 3.10 (Blender 3.4's) must run them. `tests/transfer/test_one_source.py` holds both.
"""
