"""Tiny offline fixtures: a CLINC150-format data file, a WordPiece tokenizer and a 2-layer BERT (hidden 32)."""

import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "please could you tell me what is the my a for to how do i can set check find book play show "
    "today tomorrow now again card bank flight song time weather account money call"
).split()


def hub_labels():
    """The 151 intent names in the Hub's ClassLabel order, read from the notebook (the project's copy)."""
    import ast

    nb = json.loads((REPO / "finetuning.ipynb").read_text())
    src = next("".join(c["source"]) for c in nb["cells"] if "CLINC_LABELS = [" in "".join(c["source"]))
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CLINC_LABELS":
            return ast.literal_eval(node.value)
    raise AssertionError("CLINC_LABELS not found in finetuning.ipynb")


def make_clinc_file(path, per_intent=(3, 1, 2), oos=(6, 4, 8), seed=0):
    """Write a small file in the authors' format: every intent, `per_intent` rows per train/val/test."""
    rng = random.Random(seed)
    labels = hub_labels()

    def query(intent):
        words = intent.split("_") + rng.sample(WORDS, 3)
        rng.shuffle(words)
        return " ".join(words)

    data = {}
    for key, n_in, n_oos in zip(("train", "val", "test"), per_intent, oos):
        data[key] = [[query(l), l] for l in labels if l != "oos" for _ in range(n_in)]
        data["oos_" + key] = [[" ".join(rng.sample(WORDS, 5)), "oos"] for _ in range(n_oos)]
    Path(path).write_text(json.dumps(data))
    return Path(path)


def make_tiny_bert(folder, data_file, hidden=32, layers=2, seed=0):
    """Train a WordPiece tokenizer on the data file's texts and save it with a random tiny BertModel."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = [t for rows in json.loads(Path(data_file).read_text()).values() for t, _ in rows]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=special))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        do_lower_case=True,
    )
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def make_csv_task(path, labels=(3, 10, 7), rows=(12, 12, 12), seed=0, sep=","):
    """Write a small text classification file without an out-of-scope class: integer labels, `rows` per label.

    Each label's texts hold a word of its own, so even a tiny model can learn something."""
    import csv

    rng = random.Random(seed)
    own = dict(zip(labels, ("card", "flight", "song", "weather", "money", "time")))
    lines = [(" ".join(rng.sample(WORDS, 4) + [own[label]]), label) for label, n in zip(labels, rows) for _ in range(n)]
    rng.shuffle(lines)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=sep)
        writer.writerow(["text", "label"])
        writer.writerows(lines)
    return Path(path)


def make_bundle(ns, folder, base, labels, train, oos_label=None, threshold=None, int8=True, seed=0):
    """An edge bundle in seconds, as notebook 2 writes it (its write_bundle and model_card; the repository's edge/
    files): a 1-layer DistilBERT (hidden 32) on the tiny tokenizer, exported by Optimum, int8 (dynamic) or fp32.

    `ns` is the notebook's namespace (nbcode.namespace). The model is trained for a few steps on `train`, (text,
    label) pairs, so that its answers depend on the text (a random tiny model answers every text alike)."""
    import shutil

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    folder = Path(folder)
    work = folder.parent / (folder.name + ".work")
    tok = AutoTokenizer.from_pretrained(base)
    config = DistilBertConfig(
        vocab_size=len(tok),
        dim=32,
        n_layers=1,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(config).eval()
    texts, ids = [t for t, _ in train], torch.tensor([labels.index(label) for _, label in train])
    batch = {k: v for k, v in tok(texts, padding=True, return_tensors="pt").items() if k != "token_type_ids"}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2)
    model.train()
    for _ in range(25):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(**batch).logits, ids).backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(work / "student")
    tok.save_pretrained(work / "student")
    ORTModelForSequenceClassification.from_pretrained(work / "student", export=True).save_pretrained(work / "fp32")
    model_file = work / "fp32" / "model.onnx"
    if int8:
        model_file = work / "int8" / "model.onnx"
        model_file.parent.mkdir(parents=True)
        quantize_dynamic(
            str(work / "fp32" / "model.onnx"),
            str(model_file),
            weight_type=QuantType.QUInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": 1},
        )
    stage = "ort_int8_dynamic" if int8 else "ort_fp32"
    facts = {
        "name": f"tiny {stage}",
        "task": "CLINC150" if oos_label else "tickets",
        "labels": len(labels),
        "stage": stage,
        "run_name": "tiny",
        "model_file": "onnx/" + ns["onnx_file_name"](stage),
        "size_mb": 0.1,
        "accuracy": 0.5,
        "macro_f1": 0.4,
        "accuracy_thr": 0.55,
        "oos_label": oos_label,
        "threshold": threshold,
        "latency_ms": 0.2,
        "threads": 1,
        "cpu": "test CPU",
        "dataset_id": "clinc/clinc_oos" if oos_label else None,
        "dataset_config": "plus" if oos_label else None,
        "language": "en" if oos_label else None,
        "base_model": "distilbert-base-uncased",
        "license": "apache-2.0",
        "repo": ".",
        "pruned_tokens": 0,
    }
    ns["write_bundle"](
        folder,
        model_file,
        tok,
        model.config,
        {
            "oos_label": oos_label,
            "threshold": threshold,
            "max_length": 32,
            "stage": stage,
            "run_name": "tiny",
            "oos_objective": "balanced",
        },
        ns["model_card"](facts),
    )
    shutil.copy(REPO / "edge" / "predict.py", folder / "predict.py")
    for name in ("index.html", "app.js"):
        shutil.copy(REPO / "edge" / "web" / name, folder / "web" / name)
    (folder / "requirements.txt").write_text("onnxruntime\ntokenizers\nnumpy\n")
    (folder / "metrics.json").write_text(
        json.dumps(
            {"stage": stage, "run_name": "tiny", "task": facts["task"], "test_accuracy": 0.5, "test_accuracy_thr": None}
        )
    )
    shutil.rmtree(work)
    return folder


def make_tiny_distilbert(folder, tokenizer_folder, dim=32, layers=2, seed=0):
    """A stand-in for distilbert-base-uncased: a random 2-layer DistilBertModel (dim 32, 64 positions) saved as a
    checkpoint folder with the tiny tokenizer (the student shares its teacher's tokenizer)."""
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    tok = AutoTokenizer.from_pretrained(tokenizer_folder)
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(tok),
        dim=dim,
        n_layers=layers,
        n_heads=2,
        hidden_dim=2 * dim,
        max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
    )
    DistilBertModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return Path(folder)
