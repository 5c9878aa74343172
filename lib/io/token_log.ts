/**
 * What the corpus job's first pass saw, so that the second need not read and tokenise the text again: each
 * token as its {@link WordCounter} slot, and where each sentence (each call of the tokenizer's
 * `onSentence`) and each line ended, in order. Pass 2 maps the slots to vocabulary ids through one typed
 * array and replays the ends where it would have met them (a sentence end windows the sentence, a line end
 * writes the record batches that are full: the same batches, the same bytes). Bounded: past `cap` entries
 * (4 bytes each) the log gives up and pass 2 reads the text again.
 *
 * For the Brown corpus of `deno task train` (1.0M tokens) pass 2 read, tokenised and looked up every word
 * again: about 0.5 s of the corpus's 2.4 s (BENCHMARKS.md, "The job outside the training loop").
 *
 * @module
 */

/** Entries a log holds at most (4 bytes each: 64 MiB). */
export const TOKEN_LOG_CAP = 1 << 24;

/** The entry of a sentence's end. */
export const SENTENCE_END = -1;
/** The entry of a line's end. */
export const LINE_END = -2;

/**
 * The tokens (slots ≥ 0), sentence ends and line ends of a pass over the text.
 *
 * @example
 * ```ts
 * import { LINE_END, SENTENCE_END, TokenLog } from "./token_log.ts";
 * const log = new TokenLog();
 * log.token(0), log.token(1), log.sentenceEnd(), log.lineEnd();
 * console.log([...log.entries()!]); // [0, 1, -1, -2]
 * console.log(SENTENCE_END, LINE_END); // -1 -2
 * ```
 */
export class TokenLog {
  #a: Int32Array;
  #n = 0;
  #full = false;
  readonly #cap: number;

  /** @param cap entries held at most; past it the log is dropped ({@link TokenLog.entries} undefined) */
  constructor(cap: number = TOKEN_LOG_CAP) {
    this.#cap = cap;
    this.#a = new Int32Array(Math.min(cap, 1 << 16));
  }

  /** A token, by its slot (≥ 0). */
  token(slot: number): void {
    this.#push(slot);
  }

  /** The end of a sentence (one `onSentence` call). */
  sentenceEnd(): void {
    this.#push(SENTENCE_END);
  }

  /** The end of a line. */
  lineEnd(): void {
    this.#push(LINE_END);
  }

  /** The entries in order, or undefined when the log outgrew its cap (the text must be read again). */
  entries(): Int32Array | undefined {
    return this.#full ? undefined : this.#a.subarray(0, this.#n);
  }

  #push(v: number): void {
    if (this.#n === this.#a.length) {
      if (this.#full) return;
      if (this.#n >= this.#cap) {
        this.#full = true;
        this.#a = new Int32Array(0);
        this.#n = 0;
        return;
      }
      const a = new Int32Array(Math.min(this.#cap, 2 * this.#a.length));
      a.set(this.#a);
      this.#a = a;
    }
    this.#a[this.#n++] = v;
  }
}

/** Where {@link replayTokens} sends a log's entries. */
export type TokenSink = {
  /** a token's vocabulary id */
  id(id: number): void;
  sentenceEnd(): void;
  /** a line's end; `tokens`: the tokens replayed so far */
  lineEnd(tokens: number): Promise<void>;
};

/**
 * Replays a {@link TokenLog}'s entries into `to`, in order: each token's id (`idOf[slot]`; a slot whose
 * id is −1, a word outside the vocabulary, is skipped), each sentence end, each line end (awaited).
 * Returns the tokens replayed (those skipped included).
 *
 * @example
 * ```ts
 * import { replayTokens, TokenLog } from "./token_log.ts";
 * const log = new TokenLog();
 * log.token(0), log.token(1), log.sentenceEnd(), log.lineEnd();
 * const ids: number[] = [];
 * const n = await replayTokens(log.entries()!, Int32Array.of(7, -1), {
 *   id: (id) => ids.push(id),
 *   sentenceEnd: () => ids.push(-1),
 *   lineEnd: () => Promise.resolve(),
 * });
 * console.log(n, ids); // 2 [7, -1]
 * ```
 */
export async function replayTokens(entries: Int32Array, idOf: Int32Array, to: TokenSink): Promise<number> {
  let tokens = 0;
  for (let k = 0; k < entries.length; k++) {
    const v = entries[k];
    if (v >= 0) {
      tokens++;
      const id = idOf[v];
      if (id >= 0) to.id(id);
    } else if (v === SENTENCE_END) to.sentenceEnd();
    else await to.lineEnd(tokens);
  }
  return tokens;
}
