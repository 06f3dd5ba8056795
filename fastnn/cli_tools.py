"""The `fastnn search`, `fastnn diagnose`, `fastnn plot` and `fastnn export` subcommands (parsers and handlers;
fastnn.cli wires them in). Each imports what it needs (Optuna, matplotlib, onnx) only when it runs."""
import json
import os

SEARCH_KEYS = {"model": str, "epochs": int, "limit": int, "val_fraction": float, "monitor": str, "direction": str,
               "sampler": str, "pruner": str, "trials": int, "fine_trials": int, "top_fraction": float,
               "seed": int, "workers": int, "storage": str, "study": str, "space": dict, "fixed": dict}


def add_parsers(sub):
    """Register the subcommands on the `fastnn` subparsers `sub`."""
    _search_parser(sub)
    _diagnose_parser(sub)
    _plot_parser(sub)
    _export_parser(sub)


COMMANDS = ("search", "diagnose", "plot", "export")


def run(args):
    return {"search": search, "diagnose": diagnose, "plot": plot, "export": export}[args.command](args)


def _data_options(p):
    p.add_argument("--data-dir", default=None, help="directory with the Fashion-MNIST IDX files (default: Debian's "
                                                    "dataset-fashion-mnist if installed, else the embedded subset)")
    p.add_argument("--embedded", action="store_true", help="use the embedded 10,000/2,000-image subset")


# ---- fastnn search ----------------------------------------------------------------------------------------
def _search_parser(sub):
    from fastnn.tune import DEFAULT_STORAGE, PRUNERS, SAMPLERS
    p = sub.add_parser("search", help="hyperparameter search on Optuna over a TOML config (needs fastnn[tune])",
                       description="Search hyperparameters of a `fastnn train` model on a validation split of the "
                                   "Fashion-MNIST training set. The TOML config's [search] table holds model, "
                                   "epochs, limit, monitor, direction, sampler, pruner, trials, fine_trials, seed, "
                                   "workers, storage, study, a [search.space] table (name = {type = 'uniform' | "
                                   "'loguniform' | 'int' | 'choice', low, high | values, grid}) and an optional "
                                   "[search.fixed] table; options given here override it.")
    p.add_argument("--config", required=True, help="TOML file with a [search] table")
    p.add_argument("--out", default=None, help="directory for trials.csv, best.json and the plots")
    p.add_argument("--storage", default=None, help=f"Optuna storage URL (default {DEFAULT_STORAGE}; a "
                                                   f"postgresql:// URL lets several machines share the study)")
    p.add_argument("--study", default=None, help="study name (default fastnn-search); an existing one is resumed")
    p.add_argument("--workers", type=int, default=None, help="worker processes, each pinned to its share of cores")
    p.add_argument("--sampler", choices=SAMPLERS, default=None)
    p.add_argument("--pruner", choices=PRUNERS, default=None)
    p.add_argument("--trials", type=int, default=None, help="trials of the (coarse) study")
    p.add_argument("--fine-trials", type=int, default=None,
                   help="then a fine study of this many trials over the range narrowed around the best ones")
    p.add_argument("--seed", type=int, default=None)
    _data_options(p)


def _search_config(args):
    from fastnn.tune import load_config
    config = load_config(args.config)
    for key, value in config.items():
        if key not in SEARCH_KEYS:
            raise SystemExit(f"fastnn search: {args.config}: unknown key {key!r} in [search]; allowed: "
                             f"{', '.join(SEARCH_KEYS)}")
        expected = SEARCH_KEYS[key]
        ok = isinstance(value, expected) and not isinstance(value, bool) or (expected is float and
                                                                             isinstance(value, int))
        if not ok:
            raise SystemExit(f"fastnn search: {args.config}: [search] {key} must be a {expected.__name__}, got "
                             f"{value!r}")
    if "space" not in config:
        raise SystemExit(f"fastnn search: {args.config}: no [search.space] table (the parameters to search)")
    for key in ("storage", "study", "workers", "sampler", "pruner", "trials", "fine_trials", "seed"):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    return config


def search(args):
    from fastnn import tune
    try:
        import optuna
    except ImportError:
        raise SystemExit("fastnn search needs Optuna: pip install 'fastnn[tune]'") from None
    config = _search_config(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monitor = config.get("monitor", "val_acc")
    direction = config.get("direction", "maximize" if monitor == "val_acc" else "minimize")
    try:
        objective = tune.FashionMNISTObjective(
            model=config.get("model", "mlp"), epochs=config.get("epochs", 2), limit=config.get("limit"),
            val_fraction=config.get("val_fraction", 0.1), data_dir=args.data_dir, embedded=args.embedded,
            monitor=monitor, defaults=config.get("fixed"))
        space = tune.parse_space(config["space"])
        objective.check_space(space)
        for name in config.get("fixed", {}):
            if name not in tune.MODEL_PARAMS:
                raise ValueError(f"[search.fixed] {name!r} is not a parameter of the Fashion-MNIST objective; "
                                 f"allowed: {', '.join(tune.MODEL_PARAMS)}")
        options = dict(sampler=config.get("sampler", "tpe"), pruner=config.get("pruner", "median"),
                       direction=direction, monitor=monitor, storage=config.get("storage", tune.DEFAULT_STORAGE),
                       seed=config.get("seed", 0), workers=config.get("workers", 1))
        tune.make_sampler(options["sampler"], space)
        tune.make_pruner(options["pruner"])
    except ValueError as e:
        raise SystemExit(f"fastnn search: {args.config}: {e}") from None
    name = config.get("study", "fastnn-search")
    trials = config.get("trials")
    print(f"search: {objective.model}, {objective.epochs} epoch(s) per trial, {options['sampler']} sampler, "
          f"{options['pruner']} pruning, {monitor} ({direction}), storage {options['storage']}, "
          f"{options['workers']} worker(s)", flush=True)
    studies = []
    if config.get("fine_trials"):
        coarse, fine, fine_space = tune.coarse_to_fine(objective, space, trials, config["fine_trials"],
                                                       study_name=name,
                                                       top_fraction=config.get("top_fraction", 0.25), **options)
        studies = [("coarse", coarse), ("fine", fine)]
        print("fine search space: " + ", ".join(
            f"{n} in [{d.low:.4g}, {d.high:.4g}]" if d.type != "choice" else f"{n} in {list(d.values)}"
            for n, d in fine_space.items()))
    else:
        studies = [("search", tune.search(objective, space, trials, study_name=name, **options))]
    for label, study in studies:
        print(f"\n{label} study {study.study_name!r}: {len(study.trials)} trials, best first")
        print(tune.format_table(tune.trials_table(study), monitor))
    best = max((s for _, s in studies), key=lambda s: s.best_value if direction == "maximize" else -s.best_value)
    best_cfg = {**tune.best_config(best), "study": best.study_name, "monitor": monitor,
                "fixed": {k: v for k, v in objective.defaults.items() if k not in best.best_trial.params}}
    print(f"\nbest: {monitor}={best_cfg['value']:.4f} with {best_cfg['params']} (trial {best_cfg['number']} of "
          f"{best.study_name!r}, seed {best_cfg['seed']})")
    if args.out:
        _write_search_outputs(args.out, studies, best_cfg, monitor)
    return 0


def _write_search_outputs(out, studies, best_cfg, monitor):
    import csv
    from fastnn import tune
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "best.json"), "w") as f:
        json.dump(best_cfg, f, indent=2)
    with open(os.path.join(out, "trials.csv"), "w", newline="") as f:
        rows = [(label, r) for label, s in studies for r in tune.trials_table(s)]
        names = sorted({k for _, r in rows for k in r["params"]})
        writer = csv.writer(f)
        writer.writerow(["study", "number", "state", monitor, *names, "seed", "epochs", "seconds"])
        for label, r in rows:
            writer.writerow([label, r["number"], r["state"], r["value"], *[r["params"].get(n, "") for n in names],
                             r["seed"], r["epochs"], r["seconds"]])
    written = ["best.json", "trials.csv"]
    try:
        from fastnn import plot
        for label, study in studies:
            plot.plot_search(study, os.path.join(out, f"search_{label}.png"), monitor)
            written.append(f"search_{label}.png")
    except ImportError as e:
        print(f"(no plots: {e})")
    print(f"wrote {', '.join(written)} to {out}")


# ---- fastnn diagnose --------------------------------------------------------------------------------------
def _diagnose_parser(sub):
    from fastnn.cli import MODELS
    p = sub.add_parser("diagnose", help="sanity checks before training: initial loss, overfitting a small sample, "
                                        "activation and gradient statistics, LR range test")
    p.add_argument("--model", choices=list(MODELS), default="lenet5")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=float, default=None, help="default: 0.05 for sgd, 1e-3 for adam")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=4096, help="training images to draw batches from")
    p.add_argument("--overfit-steps", type=int, default=300)
    p.add_argument("--no-lr-finder", action="store_true", help="skip the LR range test")
    p.add_argument("--lr-finder-iter", type=int, default=200, help="steps of the LR range test (1e-7 to 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="directory for activations.png and lr_finder.png")
    _data_options(p)


def diagnose(args):
    import fastnn
    from fastnn import diagnostics, optim
    from fastnn.cli import build_model
    from fastnn.train.config import DEFAULT_LR
    from fastnn.data import DataLoader, FashionMNIST, TensorDataset
    from fastnn.data.datasets import EMBEDDED_DIR
    if args.embedded and args.data_dir:
        raise SystemExit("fastnn diagnose: --embedded and --data-dir are mutually exclusive")
    if min(args.batch_size, args.limit, args.overfit_steps, args.lr_finder_iter) < 1:
        raise SystemExit("fastnn diagnose: --batch-size, --limit, --overfit-steps and --lr-finder-iter must be "
                         "positive")
    fastnn.manual_seed(args.seed)
    train = FashionMNIST(EMBEDDED_DIR if args.embedded else args.data_dir, train=True)
    print(train.note)
    x, y = train.standardized()
    loader = DataLoader(TensorDataset(fastnn.tensor(x[:args.limit]), fastnn.tensor(y[:args.limit])),
                        batch_size=args.batch_size, shuffle=True)
    model = build_model(args.model)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    print(f"diagnosing {args.model} with {args.optimizer} lr={lr} on batches of {args.batch_size}", flush=True)
    report = diagnostics.diagnose(model, loader, optimizer, overfit_steps=args.overfit_steps,
                                  lr_finder=not args.no_lr_finder, lr_finder_iter=args.lr_finder_iter)
    print("\nper-layer update/weight ratios (median over 5 steps) and first-step gradient norms:")
    for name, s in report.gradients["parameters"].items():
        print(f"  {name:24} {str(s['shape']):18} grad {s['grad_norm']:.3e}  update/weight {s['update_ratio']:.2e}")
    print("\nper-layer activations:")
    for name, s in report.activations.items():
        extra = "".join(f"  {k.replace('_fraction', '')} {s[k]:.1%}" for k in
                        ("saturated_fraction", "dead_fraction") if k in s)
        print(f"  {name:12} {s['kind']:9} mean {s['mean']:+.3f}  std {s['std']:.3f}{extra}")
    print()
    print(report)
    if args.out:
        try:
            from fastnn import plot
            written = [plot.plot_activation_histograms(report.activations, os.path.join(args.out, "activations.png"))]
            if report.lr_finder is not None:
                written.append(plot.plot_lr_finder(report.lr_finder, os.path.join(args.out, "lr_finder.png")))
            print("wrote " + ", ".join(written))
        except ImportError as e:
            print(f"(no plots: {e})")
    return 0


# ---- fastnn plot ------------------------------------------------------------------------------------------
def _plot_parser(sub):
    p = sub.add_parser("plot", help="PNG plots of a history.csv or an Optuna study (needs fastnn[plot])")
    kinds = p.add_subparsers(dest="kind", required=True)
    h = kinds.add_parser("history", help="loss/accuracy curves (raw and smoothed) from a history.csv")
    h.add_argument("history", help="history.csv (columns epoch, train_loss, train_acc, val_loss, val_acc, lr, "
                                   "seconds)")
    h.add_argument("-o", "--output", default=None, help="PNG path (default: curves.png next to the history)")
    h.add_argument("--smoothing", type=float, default=0.6, help="EMA weight of the smoothed curves, in [0, 1)")
    lr = kinds.add_parser("lr", help="the learning-rate schedule from a history.csv")
    lr.add_argument("history")
    lr.add_argument("-o", "--output", default=None, help="PNG path (default: lr.png next to the history)")
    s = kinds.add_parser("search", help="metric vs each hyperparameter of a study; with --versus, grid vs random")
    s.add_argument("--storage", default="sqlite:///study.db")
    s.add_argument("--study", required=True)
    s.add_argument("--versus", default=None, help="a second study (random search) for the grid-vs-random picture")
    s.add_argument("--important", default=None, help="with --versus: the parameter on the x axis")
    s.add_argument("--unimportant", default=None, help="with --versus: the parameter on the y axis")
    s.add_argument("-o", "--output", default="search.png")


def plot(args):
    from fastnn import plot as plots
    try:
        if args.kind in ("history", "lr"):
            default = "curves.png" if args.kind == "history" else "lr.png"
            output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.history)), default)
            if args.kind == "history":
                path = plots.plot_history(args.history, output, smoothing=args.smoothing)
            else:
                path = plots.plot_lr_schedule(args.history, output)
        else:
            from fastnn.tune import make_storage
            import optuna
            storage = make_storage(args.storage)
            study = optuna.load_study(study_name=args.study, storage=storage)
            if args.versus is None:
                path = plots.plot_search(study, args.output)
            else:
                if not (args.important and args.unimportant):
                    raise ValueError("--versus needs --important and --unimportant (parameter names)")
                versus = optuna.load_study(study_name=args.versus, storage=storage)
                path = plots.plot_random_vs_grid(study, versus, args.output, args.important, args.unimportant)
    except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
        raise SystemExit(f"fastnn plot: {e}") from None
    print(f"wrote {path}")
    return 0


# ---- fastnn export ----------------------------------------------------------------------------------------
def _export_parser(sub):
    from fastnn.cli import MODELS
    p = sub.add_parser("export", help="export a trained model to ONNX (needs fastnn[onnx])",
                       description="Write a `fastnn train` model with the weights of a checkpoint (a trainer "
                                   "checkpoint such as last.fastnn, or a saved state_dict) as an ONNX graph with a "
                                   "dynamic batch size: input 'input', output 'logits'.")
    p.add_argument("--model", choices=list(MODELS), required=True)
    p.add_argument("--checkpoint", required=True, help="trainer checkpoint or state_dict file")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--input-shape", default="1,1,28,28", help="example input shape N,C,H,W (default 1,1,28,28)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")


def export(args):
    import fastnn
    import fastnn.onnx
    from fastnn.cli import build_model
    from fastnn.train.trainer import CHECKPOINT_KIND
    try:
        shape = tuple(int(n) for n in args.input_shape.split(","))
        state = fastnn.load(args.checkpoint)
        if isinstance(state, dict) and state.get("kind") == CHECKPOINT_KIND:
            state = state["model"]
        model = build_model(args.model)
        model.load_state_dict(state)
        fastnn.onnx.export(model, fastnn.zeros(*shape), args.out, input_names=["input"], output_names=["logits"],
                           dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=args.opset)
    except (ValueError, KeyError, FileNotFoundError, ImportError, RuntimeError) as e:
        raise SystemExit(f"fastnn export: {e}") from None
    print(f"wrote {args.out} ({args.model}, input shape {shape} with a dynamic batch, opset {args.opset})")
    return 0
