#!/usr/bin/env bash
# Multimodal device check (issue 10) for a lent GPU machine; also runs on CPU.
#
#   device tool:  run command="bash bench/gpu_check.sh"  timeout_s=300
#   here (CPU):   PYTHON=.venv/bin/python bash bench/gpu_check.sh
#
# What it checks (bench/mm_check.py): a tiny random-weight Gemma4ForConditionalGeneration with
# tiny vision and audio towers is built; a user turn with an image and an audio clip is rendered
# by our renderer; the HF Gemma4Processor expands the placeholders and its ids, folded back,
# must equal ours; a forward pass runs on the GPU and the image and the audio both move the
# logits. When `vllm` imports (it does not on the lent image, and a vLLM wheel is too big to
# carry), the same request goes through VLLMEngine and vLLM's prompt length must equal the HF
# expansion. Needs torch, transformers with Gemma 4, torchvision, tokenizers, jinja2, Pillow,
# numpy: all on the lent image (no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG_DIR=${OUT:-/tmp/gemma-agent-gpu-check}
mkdir -p "$LOG_DIR" /tmp/ga-pkg
# The repository root is the package gemma_agent (pyproject package-dir): import it from here.
ln -sfn "$(pwd)" /tmp/ga-pkg/gemma_agent
export PYTHONPATH=/tmp/ga-pkg${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1
export GEMMA_AGENT_CACHE=/tmp/ga-cache TOKENIZERS_PARALLELISM=false

command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "no nvidia-smi"
DEVICE=$("$PY" - <<'PYEOF'
import importlib.util, sys
import torch, transformers
print(f"python {sys.version.split()[0]} torch {torch.__version__} transformers {transformers.__version__} "
      f"torchvision {'yes' if importlib.util.find_spec('torchvision') else 'no'} "
      f"vllm {'yes' if importlib.util.find_spec('vllm') else 'no'}", file=sys.stderr)
print("cuda" if torch.cuda.is_available() else "cpu")
PYEOF
)
echo "device: $DEVICE"
set -o pipefail
"$PY" bench/mm_check.py --device "$DEVICE" --out /tmp/ga-mm --vllm 2>&1 | tee "$LOG_DIR/mm_check.log"
