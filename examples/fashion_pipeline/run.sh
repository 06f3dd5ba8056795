#!/usr/bin/env bash
# End to end on the full Fashion-MNIST: search.toml -> `fastnn search` (coarse, then fine) -> a `fastnn train`
# config of the best trial -> 3 runs of it with seeds 0, 1, 2 -> curves PNG -> the 3 best checkpoints as an
# ensemble. Usage: examples/fashion_pipeline/run.sh [OUT_DIR] (default fashion_pipeline_out), from the repo root.
# EPOCHS (default 4) sets the final runs' length; DATA_DIR the Fashion-MNIST IDX files; THREADS the kernel threads
# of the final runs (default: all cores; on a machine loaded by other work, 1 thread per run can be much faster).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-fashion_pipeline_out}" && cd "${1:-fashion_pipeline_out}" && pwd)
EPOCHS=${EPOCHS:-4}
DATA_DIR=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
FASTNN=${FASTNN:-fastnn}
PYTHON=${PYTHON:-python}

# 1. Search: trials.csv, best.json, search_coarse.png, search_fine.png in $OUT/search; the study in $OUT/study.db.
$FASTNN search --config "$HERE/search.toml" --data-dir "$DATA_DIR" --storage "sqlite:///$OUT/study.db" \
    --out "$OUT/search"

# 2. Glue: best.json (the best trial's params plus the fixed ones) -> a `fastnn train` config. The final runs
# train on all 60,000 images with a cosine schedule from the found lr. `fastnn train` evaluates on the test set
# after every epoch, so "best" is chosen on the training loss: choosing on val_acc would choose on the test set.
$PYTHON - "$OUT/search/best.json" "$OUT/train.toml" "$DATA_DIR" "$EPOCHS" <<'PY'
import json, sys
best_json, out, data_dir, epochs = sys.argv[1:]
best = json.load(open(best_json))
p = {**best["fixed"], **best["params"]}
open(out, "w").write(f"""epochs = {int(epochs)}
[model]
name = "{p['model']}"
[data]
data_dir = "{data_dir}"
batch_size = {int(p['batch_size'])}
[optimizer]
name = "{p['optimizer']}"
lr = {p['lr']!r}
momentum = {p['momentum']!r}
weight_decay = {p['weight_decay']!r}
[schedule]
name = "cosine"
[callbacks]
lr_monitor = true
[callbacks.checkpoint]
monitor = "train_loss"
mode = "min"
""")
print(f"best trial: val_acc {best['value']:.4f} ({best['study']} #{best['number']}); wrote {out}")
PY
cat "$OUT/train.toml"

# 3. Train the best config 3 times (seeds 0, 1, 2); each run dir holds history.csv, best/last.fastnn, config.toml.
for seed in 0 1 2; do
    $FASTNN train --config "$OUT/train.toml" --seed "$seed" --out "$OUT/seed$seed" --no-progress \
        ${THREADS:+--threads "$THREADS"}
    # A few epochs: no smoothing, the raw per-epoch values.
    $FASTNN plot history "$OUT/seed$seed/history.csv" -o "$OUT/seed$seed/curves.png" --smoothing 0
done

# 4. Ensemble the 3 best checkpoints: mean of the softmax probabilities, on the 10,000 test images.
$PYTHON - "$OUT" <<'PY'
import os, sys
import fastnn
from fastnn.cli import build_model
from fastnn.data import DataLoader, FashionMNIST, TensorDataset
from fastnn.ensemble import evaluate_ensemble
from fastnn.train.config import load_file
out = sys.argv[1]
runs = [os.path.join(out, f"seed{s}") for s in (0, 1, 2)]
models = []
for run in runs:
    config = load_file(os.path.join(run, "config.toml"))
    model = build_model(config["model"]["name"])
    checkpoint = fastnn.load(os.path.join(run, "best.fastnn"))
    model.load_state_dict(checkpoint["model"])
    print(f"{run}/best.fastnn: epoch {checkpoint['epoch']}")
    models.append(model)
x, y = FashionMNIST(config["data"]["data_dir"], train=False).standardized()
loader = DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(y)), batch_size=1000)
ensemble_acc, member_accs = evaluate_ensemble(models, loader)
for run, acc in zip(runs, member_accs):
    print(f"member {os.path.basename(run)}: test accuracy {acc:.4f}")
print(f"mean member: {sum(member_accs) / len(member_accs):.4f}; ensemble of 3: test accuracy {ensemble_acc:.4f}")
PY
