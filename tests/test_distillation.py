"""The method: the KD loss formula, the student built from the teacher's layers, and the KD Trainer."""

import pytest
import torch
import torch.nn.functional as F
from nbcode import namespace


@pytest.fixture(scope="module")
def nb(tiny_teacher):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ns = namespace("distill", fp16=False, max_length=32, tokenizer=AutoTokenizer.from_pretrained(tiny_teacher))
    ns["teacher"] = AutoModelForSequenceClassification.from_pretrained(tiny_teacher).eval()
    return ns


def logits(seed, n=6, k=151):
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 3


def test_alpha_one_is_plain_cross_entropy(nb):
    s, t, y = logits(0), logits(1), torch.tensor([0, 42, 5, 150, 7, 9])
    assert torch.allclose(nb["kd_loss"](s, t, y, 1.0, 4.0), F.cross_entropy(s, y))


def test_identical_logits_give_a_zero_kd_term(nb):
    s, y = logits(2), torch.tensor([1, 2, 3, 4, 5, 6])
    assert nb["kd_loss"](s, s.clone(), y, 0.0, 3.0).abs() < 1e-6


def test_kd_term_is_t_squared_times_batchmean_kl(nb):
    s, t, y = logits(3), logits(4), torch.zeros(6, dtype=torch.long)
    for temperature in (1.0, 2.0, 7.0):
        p_t = torch.softmax(t / temperature, -1)
        kl = (p_t * (p_t.log() - torch.log_softmax(s / temperature, -1))).sum(-1).mean()  # KL(p_t || p_s), batch mean
        expected = 0.25 * F.cross_entropy(s, y) + 0.75 * temperature**2 * kl
        assert torch.allclose(nb["kd_loss"](s, t, y, 0.25, temperature), expected, atol=1e-5)


def test_copied_tensors_equal_the_teachers(nb):
    teacher = nb["teacher"]
    student = nb["student_from_teacher"](teacher, [1])
    bert, layer = teacher.bert, student.distilbert.transformer.layer[0]
    emb = student.distilbert.embeddings
    assert torch.equal(
        emb.word_embeddings.weight,
        bert.embeddings.word_embeddings.weight + bert.embeddings.token_type_embeddings.weight[0],
    )
    assert torch.equal(emb.position_embeddings.weight, bert.embeddings.position_embeddings.weight)
    t = bert.encoder.layer[1]
    for a, b in [
        (layer.attention.q_lin, t.attention.self.query),
        (layer.attention.v_lin, t.attention.self.value),
        (layer.ffn.lin2, t.output.dense),
        (layer.output_layer_norm, t.output.LayerNorm),
        (student.pre_classifier, bert.pooler.dense),
        (student.classifier, teacher.classifier),
    ]:
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert student.config.n_layers == 1 and student.config.id2label[42] == "oos"


def test_a_student_with_every_teacher_layer_matches_its_hidden_states(nb):
    teacher = nb["teacher"]
    student = nb["student_from_teacher"](teacher, list(range(teacher.config.num_hidden_layers))).eval()
    batch = nb["tokenizer"](
        ["book a flight for tomorrow", "what is my card balance please"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        t = teacher(**batch, output_hidden_states=True).hidden_states
        s = student(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
        ).hidden_states
    mask = batch["attention_mask"].bool()
    assert len(s) == len(t)
    for a, b in zip(t, s):
        assert (a[mask] - b[mask]).abs().max() < 1e-4


def make_trainer(nb, tmp_path, **kwargs):
    from transformers import DataCollatorWithPadding, TrainingArguments

    student = nb["student_from_teacher"](nb["teacher"], [0])
    args = TrainingArguments(
        output_dir=str(tmp_path / "kd"),
        report_to="none",
        per_device_train_batch_size=4,
        remove_unused_columns=False,
        use_cpu=True,
    )
    return nb["DistillationTrainer"](
        model=student,
        args=args,
        data_collator=DataCollatorWithPadding(nb["tokenizer"]),
        alpha=0.3,
        temperature=2.0,
        **kwargs,
    ), student


def a_batch(nb):
    batch = nb["tokenizer"](
        ["play some music", "cancel my alarm", "what time is it", "how far is paris"], padding=True, return_tensors="pt"
    )
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "labels": torch.tensor([0, 42, 3, 4]),
        "idx": torch.tensor([2, 0, 3, 1]),
    }


def test_cached_and_per_step_teacher_give_the_same_loss(nb, tmp_path):
    batch = a_batch(nb)
    with torch.no_grad():
        order = torch.argsort(batch["idx"])
        fresh = nb["teacher"](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    cache = torch.zeros_like(fresh)
    cache[batch["idx"]] = fresh  # row i of the cache = training example i
    cached, student = make_trainer(nb, tmp_path, teacher_logits=cache)
    per_step, _ = make_trainer(nb, tmp_path, teacher_model=nb["teacher"])
    per_step.model = student
    student.train()
    torch.manual_seed(0)
    a = cached.compute_loss(student, dict(batch))
    torch.manual_seed(0)
    b = per_step.compute_loss(student, dict(batch))
    assert torch.allclose(a, b, atol=1e-6) and a > 0 and not torch.equal(order, batch["idx"])


def test_gradients_reach_only_the_student(nb, tmp_path):
    trainer, student = make_trainer(nb, tmp_path, teacher_model=nb["teacher"])
    student.train()
    loss = trainer.compute_loss(student, a_batch(nb))
    loss.backward()
    assert all(p.grad is None for p in nb["teacher"].parameters())
    assert sum(p.grad.abs().sum() for p in student.parameters() if p.grad is not None) > 0


def test_evaluation_loss_is_cross_entropy(nb, tmp_path):
    trainer, student = make_trainer(nb, tmp_path, teacher_logits=torch.zeros(4, 151))
    student.eval()
    batch = a_batch(nb)
    with torch.no_grad():
        expected = F.cross_entropy(
            student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"]
        )
        assert torch.allclose(trainer.compute_loss(student, batch), expected)


def test_augmented_queries_are_deterministic_variants(nb):
    texts = ["book a flight to paris", "what is my balance", "hi"]
    a, b = nb["augment_queries"](texts, 2, seed=3), nb["augment_queries"](texts, 2, seed=3)
    assert a == b and len(a) == 6 and all(v.strip() for v in a)
    vocab = {w for t in texts for w in t.split()}
    assert all(set(v.split()) <= vocab for v in a), "variants only reuse words of the training queries"
    assert nb["augment_queries"](texts, 0) == []


@pytest.mark.parametrize("label_epochs, kd_steps", [(0, 4), (1, 2), (5, 2)])  # 5 > epochs - 1: clamped to 1
def test_label_epochs_drop_the_teacher_for_the_last_epochs(nb, tmp_path, monkeypatch, label_epochs, kd_steps):
    """2 epochs of 2 steps: with label_epochs=1 only the first epoch's steps use the teacher (kd_loss)."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, TrainingArguments

    texts = [
        "play some music",
        "cancel my alarm",
        "what time is it",
        "how far is paris",
        "book a table",
        "tell me a joke",
        "set a timer",
        "who made you",
    ]
    enc = nb["tokenizer"](texts)
    data = Dataset.from_dict(
        {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": [0, 42, 3, 4, 5, 6, 7, 8],
            "idx": list(range(8)),
        }
    )
    calls = []
    kd_loss = nb["kd_loss"]
    monkeypatch.setitem(nb, "kd_loss", lambda *a: calls.append(trainer.state.epoch) or kd_loss(*a))
    args = TrainingArguments(
        output_dir=str(tmp_path / "kd"),
        report_to="none",
        per_device_train_batch_size=4,
        num_train_epochs=2,
        remove_unused_columns=False,
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = nb["DistillationTrainer"](
        model=nb["student_from_teacher"](nb["teacher"], [0]),
        args=args,
        train_dataset=data,
        data_collator=DataCollatorWithPadding(nb["tokenizer"]),
        alpha=0.3,
        temperature=2.0,
        teacher_logits=torch.randn(8, 151),
        label_epochs=label_epochs,
    )
    trainer.train()
    assert trainer.state.global_step == 4
    assert len(calls) == kd_steps and all(epoch < 1 for epoch in calls[:2])


def test_frozen_embeddings_stay_as_initialised_while_the_layers_train(nb, tmp_path):
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, TrainingArguments

    texts = ["play some music", "cancel my alarm", "what time is it", "how far is paris"]
    enc = nb["tokenizer"](texts)
    data = Dataset.from_dict(
        {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": [0, 42, 3, 4],
            "idx": list(range(4)),
        }
    )
    student = nb["student_from_teacher"](nb["teacher"], [0])
    emb = student.distilbert.embeddings
    assert nb["freeze_embeddings"](student) == sum(w.numel() for w in emb.parameters()) > 0
    before = {k: v.clone() for k, v in student.state_dict().items()}
    args = TrainingArguments(
        output_dir=str(tmp_path / "kd"),
        report_to="none",
        per_device_train_batch_size=4,
        num_train_epochs=1,
        learning_rate=1e-2,
        remove_unused_columns=False,
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    nb["DistillationTrainer"](
        model=student,
        args=args,
        train_dataset=data,
        data_collator=DataCollatorWithPadding(nb["tokenizer"]),
        alpha=0.3,
        temperature=2.0,
        teacher_logits=torch.randn(4, 151),
    ).train()
    after = student.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and not any(k.startswith("distilbert.embeddings.") for k in changed)
    assert any(k.startswith("distilbert.transformer.") for k in changed) and "classifier.weight" in changed


def test_a_saved_student_is_retrained_when_an_optional_setting_is_turned_off(nb):
    optional = {"kd_label_epochs": 0, "freeze_embeddings": False}
    changed = lambda saved, now: nb["settings_changed"](saved, now, optional)
    base = {"lr": 2e-4, "epochs": 11}
    assert changed(base, dict(base)) == {}  # a student saved before the knobs
    assert changed({**base, "freeze_embeddings": True}, base) == {"freeze_embeddings": (True, False)}
    assert changed({**base, "kd_label_epochs": 3}, base) == {"kd_label_epochs": (3, 0)}
    assert changed(base, {**base, "kd_label_epochs": 3}) == {"kd_label_epochs": (0, 3)}
    assert changed({**base, "lr": 1e-4}, base) == {"lr": (1e-4, 2e-4)}
