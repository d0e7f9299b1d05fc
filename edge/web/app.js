// The edge bundle's model, tokenizer and labels, run in the page: onnxruntime-web (WebAssembly, 1 thread) and the
// tokenizer of tokenizers.js, both read from vendor/ when `make web` copied them there, else from a public CDN at the
// same pinned versions (the repository's web/package.json; a test checks). Same answers as predict.py: control
// characters become spaces, typed special tokens ("[PAD]") stay text; an empty text, one with no known token, or one
// over MAX_CHARS characters gets the out-of-scope label at confidence 0 (or an error for a task without one); below
// the threshold the answer is the out-of-scope label. The bundle's files are checked at load as predict.py checks
// them: a page whose files disagree says so instead of answering.
const VERSIONS = { "onnxruntime-web": "1.31.1", "@huggingface/tokenizers": "0.2.0" };
const MAX_CHARS = 20000;
const LOAD_TIMEOUT_MS = 60000;      // a library, file or model that does not arrive by then is reported, not awaited
const INPUTS = ["input_ids", "attention_mask", "token_type_ids"];
const $ = (id) => document.getElementById(id);

function withTimeout(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not arrive within ${LOAD_TIMEOUT_MS / 1000} s.`)),
                       LOAD_TIMEOUT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function fail(message) {     // shown in the page, instead of a silent failure
  $("status").className = "error";
  $("status").textContent = message;
  $("about").textContent = "";
}

async function importLibraries() {
  const cdn = (pkg, file) => `https://cdn.jsdelivr.net/npm/${pkg}@${VERSIONS[pkg]}/dist/${file}`;
  try {
    const [ort, tok] = await withTimeout(Promise.all([import("./vendor/ort.wasm.min.mjs"),
                                                      import("./vendor/tokenizers.min.mjs")]), "web/vendor/");
    ort.env.wasm.wasmPaths = new URL("./vendor/", location.href).href;
    return { ort, Tokenizer: tok.Tokenizer, source: "vendor/ (copied by make web)" };
  } catch (vendorError) {
    try {
      const [ort, tok] = await withTimeout(Promise.all([import(cdn("onnxruntime-web", "ort.wasm.min.mjs")),
                                                        import(cdn("@huggingface/tokenizers", "tokenizers.min.mjs"))]),
                                           "The libraries from the jsDelivr CDN");
      ort.env.wasm.wasmPaths = cdn("onnxruntime-web", "");
      return { ort, Tokenizer: tok.Tokenizer, source: "the jsDelivr CDN (vendor/ not found; make web copies it)" };
    } catch (cdnError) {
      throw new Error("the page's libraries (onnxruntime-web, tokenizers.js) could not be loaded: web/vendor/ is " +
        "missing or incomplete (run `make web` in the repository, which copies them there) and the jsDelivr CDN " +
        `could not be reached (offline?): ${cdnError.message}`);
    }
  }
}

async function fetchJson(name) {
  const res = await withTimeout(fetch(`../${name}`), name);
  if (!res.ok) throw new Error(`${name}: HTTP ${res.status}; serve the bundle folder, not web/ alone`);
  try {
    return await res.json();
  } catch (err) {
    throw new Error(`${name} is broken (${err.message}); copy it again from the bundle.`);
  }
}

function checkBundle(config, tokJson) {     // the checks of predict.py's TextClassifier, with its messages
  const id2label = config.id2label;
  if (!id2label || typeof id2label !== "object" || !Object.keys(id2label).length) {
    throw new Error("config.json has no id2label (the label of each model output); copy it again from the bundle.");
  }
  const labels = [];
  for (let i = 0; i < Object.keys(id2label).length; i++) {
    if (!(String(i) in id2label)) throw new Error(`config.json: id2label lacks output ${i}.`);
    labels.push(id2label[String(i)]);
  }
  if (!labels.every((l) => typeof l === "string" && l) || new Set(labels).size < labels.length) {
    throw new Error("config.json: id2label's labels must be distinct, non-empty strings.");
  }
  const edge = config.edge;
  if (!edge || typeof edge !== "object") {
    throw new Error('config.json has no "edge" section: it was not written by notebook 2.');
  }
  const bad = (name, expected) => new Error(`config.json: edge.${name} is ${JSON.stringify(edge[name])}; it must be ` +
                                            `${expected}.`);
  const t = edge.threshold;
  if (!(t == null || (typeof t === "number" && t >= 0 && t <= 1))) throw bad("threshold", "a number from 0 to 1, or null");
  if (!(edge.oos_label == null || labels.includes(edge.oos_label))) throw bad("oos_label", "null or one of the labels");
  const positions = config.max_position_embeddings || 1 << 20;
  if (!(Number.isInteger(edge.max_length) && edge.max_length >= 2 && edge.max_length <= positions)) {
    throw bad("max_length", `a whole number from 2 to the model's ${positions} positions`);
  }
  if (!(typeof edge.model_file === "string" && edge.model_file.endsWith(".onnx") && !edge.model_file.includes(".."))) {
    throw bad("model_file", "the ONNX file's path inside the bundle");
  }
  const vocab = Object.keys(tokJson.model.vocab).length;
  if (Number.isInteger(config.vocab_size) && vocab > config.vocab_size) {
    throw new Error(`tokenizer.json has ${vocab} tokens but the model's embedding has ${config.vocab_size} rows ` +
                    "(config.json: vocab_size): the two files come from different bundles.");
  }
  return { labels, threshold: t ?? null, oos_label: edge.oos_label ?? null, max_length: edge.max_length,
           model_file: edge.model_file, stage: edge.stage, run_name: edge.run_name };
}

function clean(text) {     // predict.py's clean(): control and format characters become spaces, lone surrogates U+FFFD
  return String(text).replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, " ").replace(/\p{Cs}/gu, "\ufffd").trim();
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exp = logits.map((x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((x) => x / sum);
}

async function load() {
  const t0 = performance.now();
  const { ort, Tokenizer, source } = await importLibraries();
  ort.env.wasm.numThreads = 1;
  const [config, tokJson, tokConfig, info] = await Promise.all([fetchJson("config.json"), fetchJson("tokenizer.json"),
    fetchJson("tokenizer_config.json"), fetchJson("metrics.json").catch(() => null)]);
  const meta = checkBundle(config, tokJson);
  const tokenizer = new Tokenizer(tokJson, tokConfig);
  let session;
  try {
    session = await withTimeout(ort.InferenceSession.create(`../${meta.model_file}`, { executionProviders: ["wasm"] }),
                                meta.model_file);
  } catch (err) {
    throw new Error(`${meta.model_file} is missing or broken (${err.message}); copy it again from the bundle.`);
  }
  if (!session.inputNames.includes("input_ids") || session.inputNames.some((n) => !INPUTS.includes(n))) {
    throw new Error(`${meta.model_file} takes the inputs ${session.inputNames.join(", ")}: it is not a text ` +
                    "classifier exported by notebook 2.");
  }
  const vocab = tokJson.model.vocab;
  const added = (tokJson.added_tokens || []).filter((t) => t.special);
  const specialText = [...new Set(added.map((t) => t.content).filter((c) => c.length > 1))].sort();
  const special = new Set([...added.map((t) => t.id), config.pad_token_id ?? 0]);
  const unknown = new Set(["[UNK]", "<unk>"].filter((t) => t in vocab).map((t) => vocab[t]));
  const last = tokenizer.encode("").ids.slice(-1);       // the closing special token ([SEP])

  function prepare(raw) {     // predict.py's prepare(): cleaned, typed special tokens kept as text
    let text = clean(raw);
    for (const token of specialText) text = text.split(token).join(`${token[0]} ${token.slice(1)}`);
    return text;
  }

  function encode(text) {
    let ids = tokenizer.encode(text).ids;
    if (ids.length > meta.max_length) ids = ids.slice(0, meta.max_length - last.length).concat(last);
    return ids;
  }

  async function logits(ids) {
    const n = ids.length;
    const feeds = {};
    const tensors = { input_ids: ids, attention_mask: ids.map(() => 1), token_type_ids: ids.map(() => 0) };
    for (const name of session.inputNames) {
      feeds[name] = new ort.Tensor("int64", BigInt64Array.from(tensors[name].map(BigInt)), [1, n]);
    }
    const out = await session.run(feeds);
    return Array.from(out[session.outputNames[0]].data);
  }

  async function predict(raw) {
    const text = prepare(raw);
    const chars = [...text];
    const ids = encode(chars.slice(0, MAX_CHARS + 1).join(""));
    const blank = !text || chars.length > MAX_CHARS || ids.every((i) => special.has(i) || unknown.has(i));
    if (blank) {
      if (meta.oos_label == null) {
        throw new Error("This text has nothing to classify: it is empty, holds no word the model knows, or is longer " +
                        `than ${MAX_CHARS.toLocaleString("en")} characters.`);
      }
      return { label: meta.oos_label, confidence: 0, top_label: null, top: [] };
    }
    const probs = softmax(await logits(ids));
    const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
    const [p, top] = order[0];
    const unsure = meta.oos_label != null && meta.threshold != null && p < meta.threshold;
    return { label: unsure ? meta.oos_label : meta.labels[top], confidence: Math.round(p * 1e4) / 1e4,
             top_label: meta.labels[top], top: order.slice(0, 5).map(([q, i]) => ({ label: meta.labels[i], p: q })) };
  }

  const probe = await logits(encode("a"));
  if (probe.length !== meta.labels.length) {
    throw new Error(`config.json lists ${meta.labels.length} labels but ${meta.model_file} answers ${probe.length}: ` +
                    "the two files come from different bundles.");
  }
  const acc = info && info.test_accuracy != null ? `, test accuracy ${(100 * info.test_accuracy).toFixed(2)} %` +
    (info.test_accuracy_thr != null ? ` (${(100 * info.test_accuracy_thr).toFixed(2)} % with the out-of-scope threshold)` : "") : "";
  $("title").textContent = `${info && info.task ? info.task : "Text"} classifier in the browser`;
  $("about").textContent = `Stage ${meta.stage} of run ${meta.run_name}${acc}; ${meta.labels.length} labels` +
    (meta.oos_label != null ? `, out-of-scope label ${meta.oos_label} below confidence ${meta.threshold}` : "") + ".";
  $("libs").textContent = `onnxruntime-web ${VERSIONS["onnxruntime-web"]} (WebAssembly, 1 thread) and ` +
    `@huggingface/tokenizers ${VERSIONS["@huggingface/tokenizers"]}, loaded from ${source}. ` +
    `Everything runs in this page; nothing is sent anywhere. Loaded in ${Math.round(performance.now() - t0)} ms.`;
  return { encode: (text) => encode(prepare(text)), logits, predict, meta, loadMs: performance.now() - t0 };
}

function show(result, ms) {
  $("answer").innerHTML = "";
  const b = document.createElement("b");
  b.textContent = result.label;
  $("answer").append(b, ` (confidence ${result.confidence.toFixed(3)})`);
  $("bars").innerHTML = "";
  for (const { label, p } of result.top) {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = '<span></span><div class="track"><div class="fill"></div></div><span></span>';
    row.children[0].textContent = label;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.children[2].textContent = `${(100 * p).toFixed(1)} %`;
    $("bars").append(row);
  }
  $("timing").textContent = `${ms.toFixed(2)} ms for this query in the page (tokenization and model).`;
}

if (location.protocol !== "file:") {     // index.html explains file:// pages
  window.fdq = load().then((api) => {
    $("query").disabled = $("go").disabled = false;
    $("query").focus();
    $("form").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("status").className = "";
      $("status").textContent = "";
      const t0 = performance.now();
      try {
        const result = await api.predict($("query").value);
        show(result, performance.now() - t0);
      } catch (err) {
        $("answer").textContent = "";
        $("bars").innerHTML = "";
        $("status").className = "error";
        $("status").textContent = err.message;
      }
    });
    return api;
  }).catch((err) => {
    fail(`Could not load the bundle: ${err.message}`);
    return null;
  });
}
