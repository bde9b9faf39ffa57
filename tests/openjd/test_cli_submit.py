"""What `wanhe submit BUNDLE_DIR` uploads and how the farm maps it: the template, the bundle's
asset references (files and folders, inside the bundle or elsewhere), PATH inputs that exist
here; output folders map to the job's output folder (no server needed: the planning part)."""

from __future__ import annotations

from pathlib import Path

from tests.openjd._util import step, template, write_yaml
from wanhe.cli.openjd import _inputs, outside_bundle
from wanhe.jobtypes.base import JobFolder
from wanhe.jobtypes.openjd import OpenJDOptions, check_own_paths, path_rules
from wanhe.openjd.localrun import load_source, make_plan


def test_a_bundles_inputs_and_outputs(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "scenes").mkdir(parents=True)
    (bundle / "scenes" / "shot.hip").write_text("hip")
    elsewhere = tmp_path / "library"
    (elsewhere / "tex").mkdir(parents=True)
    (elsewhere / "tex" / "a.exr").write_text("a")
    (elsewhere / "tex" / "b.exr").write_text("b")
    lut = tmp_path / "show.cube"
    lut.write_text("lut")
    write_yaml(bundle / "template.yaml", template(
        params=[{"name": "Scene", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
                 "default": "scenes/shot.hip"},
                {"name": "Lut", "type": "PATH", "objectType": "FILE", "dataFlow": "IN"},
                {"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
                 "default": "renders"}],
        steps=[step("S", "true")]))
    write_yaml(bundle / "asset_references.yaml", {"assetReferences": {
        "inputs": {"directories": [str(elsewhere / "tex")], "filenames": []},
        "outputs": {"directories": ["comps"]}}})
    source = load_source(bundle, None, {"Lut": str(lut)})
    made = make_plan(source)
    files, mapping, outputs = _inputs(source, made)
    assert files["scenes/shot.hip"] == bundle / "scenes" / "shot.hip"
    tex = mapping[str(elsewhere / "tex")]
    assert {f"{tex}/a.exr", f"{tex}/b.exr", mapping[str(lut)]} <= set(files)
    assert outputs == [str(bundle / "comps"), str(bundle / "renders")]
    folder = JobFolder(Path("/w/jobs/7/input"), Path("/w/jobs/7/output"), Path("/w/jobs/7/work"))
    rules = path_rules(OpenJDOptions(template_dir=str(bundle), inputs=mapping, outputs=outputs),
                       folder)
    by_source = {r["source_path"]: r["destination_path"] for r in rules}
    assert by_source[str(bundle)] == "/w/jobs/7/input"
    assert by_source[str(elsewhere / "tex")] == f"/w/jobs/7/input/{tex}"
    assert by_source[str(bundle / "renders")] == "/w/jobs/7/output/out1"
    # the wrangler is told which files leave from outside the bundle (the 0600 LUT too)
    assert outside_bundle(files, bundle) == sorted(
        [elsewhere / "tex" / "a.exr", elsewhere / "tex" / "b.exr", lut])
    # and the farm's rule (a job names only its own files) accepts what the CLI sends
    check_own_paths(made, OpenJDOptions(template_dir=str(bundle), inputs=mapping,
                                        outputs=outputs), "main")


def test_submit_says_which_files_leave_from_outside_the_bundle(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from wanhe.cli import app

    bundle = tmp_path / "bundle"
    secret = tmp_path / "home" / ".ssh_like_secret"
    secret.parent.mkdir()
    secret.write_text("private")
    secret.chmod(0o600)
    write_yaml(bundle / "template.yaml", template(
        params=[{"name": "Src", "type": "PATH", "objectType": "FILE", "dataFlow": "IN"}],
        steps=[step("S", "true")]))
    write_yaml(bundle / "parameter_values.yaml", {"parameterValues": [
        {"name": "Src", "value": str(secret)}]})
    # no server listens here: the notice comes before the upload is tried
    result = CliRunner().invoke(app, ["submit", str(bundle), "--server",
                                      "http://127.0.0.1:9", "--token", "x"])
    said = "".join(result.stderr.split("\n"))  # the console wraps long lines
    assert f"sending 1 file(s) from outside the bundle {bundle}" in said
    assert str(secret) in said
