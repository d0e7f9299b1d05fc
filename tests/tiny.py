"""Tiny offline fixtures: a CLINC150-format data file, a WordPiece tokenizer and a 2-layer BERT (hidden 32)."""
import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("please could you tell me what is the my a for to how do i can set check find book play show "
         "today tomorrow now again card bank flight song time weather account money call").split()


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
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", do_lower_case=True)
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(fast), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
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
