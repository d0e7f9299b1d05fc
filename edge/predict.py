#!/usr/bin/env python3
"""Text classification with ONNX Runtime alone: no PyTorch, no transformers. The bundle is a Hugging Face model
folder: config.json (labels, and the out-of-scope label and threshold under "edge"), tokenizer.json, onnx/*.onnx.

    python predict.py "what is my checking balance" "play some jazz"
    echo "book a table for two" | python predict.py --json
    python predict.py --input queries.csv --text-column text --output answers.jsonl --threads 2

A text with nothing to classify (empty, only spaces or control characters, no token the model knows, such as
emoji only, or longer than MAX_CHARS) gets a defined answer: the out-of-scope label with confidence 0 when the
task has one, else an error for that text alone. Typed special tokens ("[PAD]", "[MASK]") stay text. A missing or
broken bundle file stops at load with a message naming the file and field (exit code 2), never a traceback.
"""

import argparse
import csv
import io
import json
import os
import sys
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
MAX_CHARS = 20_000  # longer texts are refused like empty ones: the model would only see their first tokens
CHUNK = 1024  # batch mode: texts read, classified and written at a time (memory stays flat)
BATCH = 32  # texts per model call inside a chunk, sorted by length so that little padding is computed
INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


class BundleError(Exception):
    """A file of the bundle is missing or broken, or a text cannot be classified; the message says which."""


def clean(text):
    """The text with control and format characters (NUL, escape codes, zero-width marks, line breaks) turned into
    spaces and lone surrogates (undecodable bytes) into U+FFFD."""
    if text.isprintable():
        return text.strip()
    return "".join(
        " " if cat in ("Cc", "Cf", "Zl", "Zp") else "\ufffd" if cat == "Cs" else c
        for c, cat in ((c, unicodedata.category(c)) for c in text)
    ).strip()


def check_threshold(value, what="the threshold"):
    """`value` as a float in [0, 1] (None stays None), or a ValueError naming `what`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a number from 0 to 1 (or null), not {value!r}")
    return float(value)


def check_threads(threads):
    """The number of threads, capped to this machine's cores (with a note on stderr); a ValueError if not positive."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive whole number, not {threads!r}")
    cores = os.cpu_count() or 1
    if threads > cores:
        print(f"predict.py: {threads} threads asked, this machine has {cores} cores: using {cores}.", file=sys.stderr)
    return min(threads, cores)


class TextClassifier:
    """Tokenizer + ONNX model + labels (+ the out-of-scope label and its threshold), loaded from a bundle folder."""

    def __init__(self, folder=HERE, threads=1):
        folder = Path(folder)
        threads = check_threads(threads)
        config_file = folder / "config.json"
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise BundleError(
                f"{config_file} is missing or broken ({type(err).__name__}: {err}); copy it again from the bundle."
            ) from None
        self.labels, edge = self._labels(config, config_file), config.get("edge")
        if not isinstance(edge, dict):
            raise BundleError(
                f'{config_file} has no "edge" section (the out-of-scope label, threshold, max_length '
                "and model file): it was not written by notebook 2; copy it again from the bundle."
            )

        def field(name, ok, expected):
            value = edge.get(name)
            if not ok(value):
                raise BundleError(f"{config_file}: edge.{name} is {value!r}; it must be {expected}.")
            return value

        self.threshold = field(
            "threshold",
            lambda v: v is None or (type(v) in (int, float) and 0 <= v <= 1),
            "a number from 0 to 1, or null",
        )
        self.oos_label = field("oos_label", lambda v: v is None or v in self.labels, "null or one of the labels")
        positions = config.get("max_position_embeddings")
        max_length = field(
            "max_length",
            lambda v: type(v) is int and 2 <= v <= (positions or 1 << 20),
            f"a whole number from 2 to the model's {positions} positions",
        )
        model_file = field(
            "model_file",
            lambda v: isinstance(v, str) and v.endswith(".onnx") and ".." not in v,
            "the ONNX file's path inside the bundle, such as onnx/model_quantized.onnx",
        )
        try:
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as err:
            raise BundleError(
                f"{folder / 'tokenizer.json'} is missing or broken ({str(err)[:200]}); copy it again from the bundle."
            ) from None
        rows, vocab = config.get("vocab_size"), self.tokenizer.get_vocab_size()
        if type(rows) is int and vocab > rows:
            raise BundleError(
                f"{folder / 'tokenizer.json'} has {vocab:,} tokens but the model's embedding has "
                f"{rows:,} rows ({config_file}: vocab_size): the two files come from different bundles."
            )
        pad_id = config.get("pad_token_id", 0)
        if type(pad_id) is not int or not 0 <= pad_id < min(vocab, rows or vocab):
            raise BundleError(
                f"{config_file}: pad_token_id is {pad_id!r}; it must be a token id below {min(vocab, rows or vocab):,}."
            )
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=self.tokenizer.id_to_token(pad_id) or "[PAD]")
        added = self.tokenizer.get_added_tokens_decoder()
        self.special_text = sorted({t.content for t in added.values() if t.special and len(t.content) > 1})
        self.special = {i for i, t in added.items() if t.special} | {pad_id}
        self.unknown = {self.tokenizer.token_to_id(t) for t in ("[UNK]", "<unk>")} - {None}
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3
        model = folder / model_file
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise BundleError(
                f"{model} is missing or broken ({str(err).splitlines()[0][:200]}); copy it again from the bundle."
            ) from None
        outputs = self.session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != len(self.labels):
            raise BundleError(
                f"{config_file} lists {len(self.labels)} labels but {model} answers {outputs}: the two "
                "files come from different bundles."
            )
        self.input_names = [i.name for i in self.session.get_inputs()]
        if "input_ids" not in self.input_names or set(self.input_names) - INPUTS:
            raise BundleError(
                f"{model} takes the inputs {self.input_names}; predict.py feeds {sorted(INPUTS)} "
                "(input_ids at least): it is not a text classifier exported by notebook 2."
            )

    @staticmethod
    def _labels(config, config_file):
        id2label = config.get("id2label") if isinstance(config, dict) else None
        if not isinstance(id2label, dict) or not id2label:
            raise BundleError(
                f"{config_file} has no id2label (the label of each model output); copy it again from the bundle."
            )
        try:
            labels = [id2label[str(i)] for i in range(len(id2label))]
        except KeyError as err:
            raise BundleError(
                f"{config_file}: id2label lacks output {err.args[0]}; its keys must be 0 to {len(id2label) - 1}."
            ) from None
        if not all(isinstance(label, str) and label for label in labels) or len(set(labels)) < len(labels):
            raise BundleError(f"{config_file}: id2label's labels must be distinct, non-empty strings.")
        return labels

    def prepare(self, text):
        """The text the tokenizer sees: cleaned, and special-token strings typed by a user kept as text."""
        text = clean(text)
        for token in self.special_text:
            if token in text:
                text = text.replace(token, f"{token[0]} {token[1:]}")
        return text

    def _nothing(self, text, encoding):
        """True when a text holds nothing to classify: empty, too long, or no token the model knows."""
        return (
            not text
            or len(text) > MAX_CHARS
            or all(i in self.special or i in self.unknown for i, m in zip(encoding.ids, encoding.attention_mask) if m)
        )

    def _run(self, encodings):
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        feed = {
            "input_ids": ids,
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.zeros_like(ids),
        }
        return self.session.run(None, {k: feed[k] for k in self.input_names})[0]

    def logits(self, texts):
        """The model's logits for a list of texts (no nothing-to-classify check)."""
        texts = self._texts(texts)
        return self._run(self.tokenizer.encode_batch([self.prepare(t)[: MAX_CHARS + 1] for t in texts]))

    @staticmethod
    def _texts(texts):
        if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
            raise TypeError(f"give a list of strings, not a {type(texts).__name__}")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i + 1} is a {type(t).__name__} ({t!r:.40}), not a string")
        return texts

    def classify(self, texts, threshold=None):
        """One dict per text, like predict(), but a text the task cannot answer gets {"label": None, ...,
        "error": why} in its own row instead of stopping the others."""
        texts = [self.prepare(t) for t in self._texts(texts)]
        threshold = self.threshold if threshold is None else check_threshold(threshold)
        encodings = self.tokenizer.encode_batch([t[: MAX_CHARS + 1] for t in texts])
        nothing = [self._nothing(t, e) for t, e in zip(texts, encodings)]
        out = [{"label": self.oos_label, "confidence": 0.0, "top_label": None} for _ in texts]
        for i in (i for i, n in enumerate(nothing) if n and self.oos_label is None):
            out[i] = {
                "label": None,
                "confidence": 0.0,
                "top_label": None,
                "error": f"nothing to classify: the text is empty, holds no word the model knows, or is longer "
                f"than {MAX_CHARS:,} characters",
            }
        rows = [i for i, n in enumerate(nothing) if not n]
        if rows:
            logits = self._run([encodings[i] for i in rows])
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            tops = probs.argmax(-1)
            for i, top, p in zip(rows, tops.tolist(), probs[np.arange(len(rows)), tops].tolist()):
                unsure = self.oos_label is not None and threshold is not None and p < threshold
                out[i] = {
                    "label": self.oos_label if unsure else self.labels[top],
                    "confidence": round(p, 4),
                    "top_label": self.labels[top],
                }
        return out

    def predict(self, texts, threshold=None):
        """One dict per text: label (the out-of-scope label below the threshold, if the task has one), confidence,
        and the top label. A text with nothing to classify: the out-of-scope label at confidence 0, or, for a task
        without one, a BundleError naming the text. Texts must be strings (a TypeError names the first that is not)."""
        out = self.classify(texts, threshold)
        for i, row in enumerate(out):
            if "error" in row:
                raise BundleError(f"text {i + 1} ({texts[i][:40]!r}) has {row['error']}.")
        return out


# Batch mode: texts are read, classified and written a chunk at a time, so memory stays flat whatever the input's size.


def read_texts(stream, kind, column):
    """(row number, text or None, error or None) for each row of a binary stream: plain text (one per line; blank
    lines skipped), CSV/TSV with a header, or JSON Lines. Bytes that are not UTF-8 are replaced, row by row."""
    if kind == "text":
        for n, raw in enumerate(stream, 1):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.strip():
                yield n, line, None
        return
    if kind == "jsonl":
        for n, raw in enumerate(stream, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8", "replace"))
                text = row[column] if isinstance(row, dict) else None
            except ValueError as err:
                yield n, None, f"not a JSON line ({err})"
                continue
            except KeyError:
                yield n, None, f"no field {column!r}"
                continue
            yield (n, text, None) if isinstance(text, str) else (n, None, f"{column!r} is not a string")
        return
    reader = csv.reader(
        io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=""),
        delimiter="\t" if kind == "tsv" else ",",
    )
    header = next(reader, [])
    if column not in header:
        raise BundleError(
            f"the {kind.upper()} input has no column {column!r} (its columns: "
            f"{', '.join(map(repr, header[:20]))}); name one with --text-column."
        )
    at = header.index(column)
    for n, row in enumerate(reader, 1):
        if row:
            yield (n, row[at], None) if at < len(row) else (n, None, f"the row has no {column!r} column")


def chunks(rows, size=CHUNK):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Workers:
    """Batch mode's model calls: one classifier (one session) per thread, each session single-threaded. On small
    batches this beats one session with that many intra-op threads (2 cores: 2,362 against 1,981 texts per second)."""

    def __init__(self, folder, threads):
        spare = [TextClassifier(folder, threads=1) for _ in range(threads)]
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(threads, initializer=lambda: setattr(self.local, "clf", spare.pop()))

    def map(self, batches, threshold):
        """The answers of each batch of texts, in order."""
        return self.pool.map(lambda texts: self.local.clf.classify(texts, threshold), batches)


def classify_chunk(clf, chunk, threshold):
    """Answers for one chunk of (row, text, error), classified in length-sorted batches, in the chunk's order.
    `clf`: a TextClassifier, or Workers."""
    out = [None] * len(chunk)
    todo = sorted((i for i, (_, text, error) in enumerate(chunk) if error is None), key=lambda i: len(chunk[i][1]))
    batches = [todo[start : start + BATCH] for start in range(0, len(todo), BATCH)]
    texts = [[chunk[i][1] for i in batch] for batch in batches]
    answers = clf.map(texts, threshold) if isinstance(clf, Workers) else (clf.classify(t, threshold) for t in texts)
    for batch, batch_answers in zip(batches, answers):
        for i, answer in zip(batch, batch_answers):
            out[i] = answer
    for i, (_, _, error) in enumerate(chunk):
        if error is not None:
            out[i] = {"label": None, "confidence": 0.0, "top_label": None, "error": error}
    return out


def input_kind(path, given):
    if given:
        return given
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "text")


class Writer:
    """Where the answers go: plain lines or JSON lines on stdout (with the text), or a JSON Lines/CSV file (with the
    input's row number)."""

    def __init__(self, output, as_json):
        self.file = open(output, "w", encoding="utf-8", newline="") if output else None
        self.csv = csv.writer(self.file) if output and Path(output).suffix.lower() == ".csv" else None
        if self.csv:
            self.csv.writerow(["row", "label", "confidence", "top_label", "error"])
        self.as_json = as_json

    def write(self, n, text, r):
        if self.csv:
            self.csv.writerow([n, r["label"], r["confidence"], r["top_label"], r.get("error", "")])
        elif self.file:
            self.file.write(json.dumps({"row": n, **r}, ensure_ascii=False) + "\n")
        elif self.as_json:
            print(json.dumps({"text": text, **r}, ensure_ascii=False))
        else:  # the echoed text is cleaned: a carriage return or escape code in it cannot fake an answer line
            shown = clean(text or "")[:200]
            print(
                f"{r['label']!s:<24} {r['confidence']:.3f}  {shown}"
                if "error" not in r
                else f"{'(error)':<24} {0:.3f}  {shown}  [{r['error']}]"
            )

    def close(self):
        if self.file:
            self.file.close()


def run(args, ap):
    if args.input and args.texts:
        ap.error("give texts as arguments or --input FILE, not both")
    try:
        threshold = check_threshold(args.threshold, "--threshold")
        threads = check_threads(args.threads)
    except ValueError as err:
        ap.error(str(err))
    if args.texts:
        rows = ((n, os.fsencode(t).decode("utf-8", "replace"), None) for n, t in enumerate(args.texts, 1))
        stream = None
    else:
        stream = sys.stdin.buffer if args.input in (None, "-") else open(args.input, "rb")
        rows = read_texts(stream, input_kind(args.input or "-", args.format), args.text_column)
    streamed = args.input or not args.texts  # a file or standard input: batch mode
    clf = Workers(HERE, threads) if streamed and threads > 1 else TextClassifier(threads=threads)
    writer = Writer(args.output, args.json)
    done = failed = 0
    first_error = None
    t0 = last = time.perf_counter()
    try:
        for chunk in chunks(rows, CHUNK if streamed else len(args.texts)):
            for (n, text, _), r in zip(chunk, classify_chunk(clf, chunk, threshold)):
                writer.write(n, text, r)
                if "error" in r:
                    failed += 1
                    first_error = first_error or f"text {n}: {r['error']}"
            done += len(chunk)
            if time.perf_counter() - last > 5 and (args.output or args.input):
                last = time.perf_counter()
                print(f"predict.py: {done:,} texts, {done / (last - t0):,.0f} per second", file=sys.stderr)
    finally:
        writer.close()
        if stream not in (None, sys.stdin.buffer):
            stream.close()
    if not done:
        ap.error("give at least one text, as arguments, on standard input or with --input FILE")
    seconds = time.perf_counter() - t0
    print(
        f"predict.py: {done:,} texts in {seconds:.2f} s ({done / seconds:,.0f} per second, {1000 * seconds / done:.2f}"
        f" ms per text, tokenisation included, {threads} thread(s))",
        file=sys.stderr,
    )
    if failed:
        print(
            f"predict.py: {failed:,} text(s) could not be classified, first {first_error}; every other answer "
            "is written.",
            file=sys.stderr,
        )
        return 2
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Classify texts with the bundled model (labels in config.json).")
    ap.add_argument("texts", nargs="*", help="texts (default: one per line on standard input, or --input)")
    ap.add_argument(
        "--input",
        metavar="FILE",
        help="texts to classify: plain text (one per line), .csv, .tsv or "
        ".jsonl (the column or field --text-column); - for standard input",
    )
    ap.add_argument("--text-column", default="text", help="the CSV column or JSON field holding the text (text)")
    ap.add_argument(
        "--format", choices=["text", "csv", "tsv", "jsonl"], help="the input's format, if its name does not say it"
    )
    ap.add_argument(
        "--output",
        metavar="FILE",
        help="write the answers here: .csv, else JSON Lines (row, label, confidence, top_label[, error])",
    )
    ap.add_argument("--json", action="store_true", help="print JSON lines on standard output")
    ap.add_argument("--threads", type=int, default=1, help="threads for the model (default 1)")
    ap.add_argument("--threshold", type=float, default=None, help="override the bundle's out-of-scope threshold")
    args = ap.parse_args(argv)
    try:
        return run(args, ap)
    except (BundleError, OSError) as err:
        if isinstance(err, BrokenPipeError):
            raise
        print(f"predict.py: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `predict.py ... | head -1`: the reader left; end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
