"""Vocabulary pruning: what is kept, the renumbered tokenizer, and a pruned student that answers as before."""

import json

import pytest
import torch
from nbcode import namespace


@pytest.fixture(scope="module")
def nb(tiny_teacher):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_teacher)
    ns = namespace("distill", fp16=False, max_length=32, tokenizer=tok)
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher).eval()
    ns["student"] = ns["student_from_teacher"](teacher, [0]).eval()
    return ns


TRAIN = ["book a flight for tomorrow", "play a song", "what is the weather"]


def test_keeps_special_tokens_training_tokens_and_every_single_character(nb):
    tok = nb["tokenizer"]
    keep = nb["vocabulary_to_keep"](tok, TRAIN, 32)
    assert keep == sorted(set(keep))
    assert set(tok.all_special_ids) <= set(keep)
    used = {i for ids in tok(TRAIN)["input_ids"] for i in ids}
    assert used <= set(keep)
    vocab = tok.get_vocab()
    singles = {i for t, i in vocab.items() if len(t) == 1 or (t.startswith("##") and len(t) == 3)}
    assert singles <= set(keep)
    assert len(keep) < len(vocab), "the tiny vocabulary has whole words the three queries do not use"


def test_pruned_tokenizer_gives_the_old_ids_renumbered_and_splits_a_dropped_word(nb):
    tok = nb["tokenizer"]
    keep = nb["vocabulary_to_keep"](tok, TRAIN, 32)
    pruned = nb["prune_tokenizer"](tok, keep)
    assert len(pruned) == len(keep)
    for text in TRAIN:
        assert [keep[i] for i in pruned(text)["input_ids"]] == tok(text)["input_ids"]
    assert pruned.convert_tokens_to_ids(["[CLS]", "[SEP]", "[PAD]"]) == [
        keep.index(tok.convert_tokens_to_ids(t)) for t in ("[CLS]", "[SEP]", "[PAD]")
    ]
    assert pruned.pad_token_id == keep.index(tok.pad_token_id)
    dropped = next(t for t, i in tok.get_vocab().items() if i not in keep and t.isalpha() and len(t) > 3)
    pieces = pruned.tokenize(dropped)
    assert len(pieces) > 1 and pruned.unk_token not in pieces, pieces
    assert nb["ids_changed"](tok, pruned, keep, [TRAIN[0], dropped]).tolist() == [False, True]
    # the saved tokenizer.json (what the edge bundle reads) gives the same ids without transformers
    from tokenizers import Tokenizer

    spec = json.loads(pruned.backend_tokenizer.to_str())
    assert Tokenizer.from_str(json.dumps(spec)).encode(TRAIN[1]).ids == pruned(TRAIN[1])["input_ids"]


def test_pruned_student_answers_exactly_as_before_on_kept_tokens(nb):
    tok, student = nb["tokenizer"], nb["student"]
    keep = nb["vocabulary_to_keep"](tok, TRAIN, 32)
    pruned_tok = nb["prune_tokenizer"](tok, keep)
    pruned = nb["prune_student"](student, keep, 32)
    assert pruned.distilbert.embeddings.word_embeddings.weight.shape[0] == len(keep)
    assert pruned.distilbert.embeddings.position_embeddings.weight.shape[0] == 32
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in student.parameters())
    a, b = tok(TRAIN, padding=True, return_tensors="pt"), pruned_tok(TRAIN, padding=True, return_tensors="pt")
    with torch.no_grad():
        before = student(input_ids=a["input_ids"], attention_mask=a["attention_mask"]).logits
        after = pruned(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    assert torch.allclose(before, after, atol=1e-5)
    assert student.distilbert.embeddings.word_embeddings.weight.shape[0] == len(tok), "the original is untouched"
