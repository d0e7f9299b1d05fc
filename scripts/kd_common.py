"""What scripts/kd_search.py and scripts/kd_variants.py share: the options of a student run, loading the teacher and
the data through the notebook's own cells (scripts/nbcode.py), and building the student as the notebook does."""

import json
from pathlib import Path

from nbcode import REPO, namespace


def add_student_options(ap):
    """The teacher, the data and the student's training, with the `cpu` profile's values as defaults, except
    --label-epochs (0 here, 3 in the profile)."""
    ap.add_argument("--teacher", default=str(REPO / "artifacts" / "cpu" / "teacher"), help="teacher folder")
    ap.add_argument("--data-file", help="CLINC150 in the authors' format (else the Hub's clinc/clinc_oos plus)")
    ap.add_argument("--layers", default="1,3,5", help="teacher layers copied into the student")
    ap.add_argument(
        "--label-epochs", type=int, default=0, help="last epochs on the labels alone (the notebook's kd_label_epochs)"
    )
    ap.add_argument("--freeze-embeddings", action="store_true", help="the notebook's student_freeze_embeddings")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup-ratio", type=float, default=0.0, help="the notebook's student_warmup_ratio")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--max-length", type=int, default=None, help="default: the teacher's own (teacher_metrics.json), else 64"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)


def resolved(path):
    """An absolute path as text, or None: how the scripts record a teacher or data file in their settings."""
    return str(Path(path).resolve()) if path else None


def resolve_max_length(args):
    """--max-length, else the teacher's own (teacher_metrics.json), else 64; written back into `args`."""
    if args.max_length is None:
        record = Path(args.teacher) / "teacher_metrics.json"
        args.max_length = (json.loads(record.read_text()).get("max_length") if record.is_file() else None) or 64
    return args.max_length


def clinc_namespace(**globals_):
    """The notebook's functions for the CLINC150 research: `clinc_metrics` is its `task_metrics` with `oos` (id 42)
    and without macro-F1 (the experiment records predate it), and `load_clinc` gives the splits with an `intent`
    column, as the scripts were written for."""
    ns = namespace("distill", **globals_)
    ns["clinc_metrics"] = lambda y, p: {k: v for k, v in ns["task_metrics"](y, p, 42).items() if k != "macro_f1"}
    ns["load_clinc"] = lambda data_file: (
        ns["load_task"](data_file=data_file)[0].rename_column("label", "intent")
        if data_file
        else ns["load_task"]("clinc/clinc_oos", "plus", label_column="intent")[0].rename_column("label", "intent")
    )
    return ns


def load_teacher_and_data(args):
    """(notebook namespace, tokenizer, teacher in eval mode, CLINC150 splits), on the CPU with --threads."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(args.threads)
    resolve_max_length(args)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    ns = clinc_namespace(fp16=False, max_length=args.max_length, tokenizer=tokenizer, DEVICE="cpu")
    teacher = AutoModelForSequenceClassification.from_pretrained(args.teacher).eval()
    return ns, tokenizer, teacher, ns["load_clinc"](args.data_file or "")


def new_student(ns, teacher, args):
    """A fresh student seeded with --seed: --layers copied from the teacher, embeddings frozen on request.

    With `args.init_from` (kd_variants.py --init-from) the layers come from that pretrained BERT instead, given the
    teacher's labels and a new, seeded classifier."""
    from transformers import AutoModelForSequenceClassification, set_seed

    set_seed(args.seed)
    source = teacher
    if getattr(args, "init_from", None):
        tc = teacher.config
        source = AutoModelForSequenceClassification.from_pretrained(
            args.init_from, num_labels=tc.num_labels, id2label=dict(tc.id2label), label2id=dict(tc.label2id)
        )
        if not hasattr(source, "bert") or source.config.vocab_size != tc.vocab_size:
            raise SystemExit(
                f"--init-from {args.init_from}: a {source.config.model_type} model with "
                f"{source.config.vocab_size} tokens; the student reads the teacher's tokenizer "
                f"({tc.vocab_size} tokens), so give a BERT with the teacher's vocabulary "
                "(e.g. the model the teacher was fine-tuned from)."
            )
    student = ns["student_from_teacher"](source, [int(x) for x in args.layers.split(",")])
    if args.freeze_embeddings:
        ns["freeze_embeddings"](student)
    return student
