#!/bin/bash
# `wanhe run` vs `openjd run` on the same template, side by side, 3 rounds:
# 20 trivial tasks behind a job environment whose onEnter takes 2 s (a DCC loading).
# Usage: PYTHONPATH=src bench/openjd_session.sh   (prints wall seconds and onEnter runs)
set -e
dir=$(mktemp -d)
cat > "$dir/job.yaml" <<'YAML'
specificationVersion: 'jobtemplate-2023-09'
name: Bench
parameterDefinitions:
- {name: Out, type: PATH, objectType: DIRECTORY, dataFlow: OUT}
jobEnvironments:
- name: Dcc
  script:
    actions:
      onEnter: {command: bash, args: ["-c", "mkdir -p {{Param.Out}}; sleep 2; echo x >> {{Param.Out}}/enter.log"]}
steps:
- name: Work
  parameterSpace:
    taskParameterDefinitions:
    - {name: F, type: INT, range: "1-20"}
  script:
    actions:
      onRun: {command: bash, args: ["-c", "echo {{Task.Param.F}} > {{Param.Out}}/{{Task.Param.F}}.txt"]}
YAML
bin=$(dirname "$(command -v python)")
for i in 1 2 3; do
  rm -rf "$dir/o1" "$dir/o2"
  s=$(date +%s.%N); "$bin/openjd" run "$dir/job.yaml" -p "Out=$dir/o1" >/dev/null 2>&1; e=$(date +%s.%N)
  echo "openjd run  $(echo "$e - $s" | bc) s, onEnter runs: $(wc -l < "$dir/o1/enter.log")"
  s=$(date +%s.%N)
  WANHE_HOME="$dir/h" "$bin/wanhe" run --template "$dir/job.yaml" -p "Out=$dir/o2" -q \
    --db "sqlite:///$dir/w$i.db" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "wanhe run   $(echo "$e - $s" | bc) s, onEnter runs: $(wc -l < "$dir/o2/enter.log")"
done
rm -rf "$dir"
