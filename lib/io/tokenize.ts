/**
 * Unicode-aware tokenisation of plain text and of the tagged Brown corpus.
 *
 * A word is a run of letters, marks and digits (`\p{L}\p{M}\p{N}`), possibly joined by a single
 * apostrophe, hyphen, period or underscore followed by more of them ("don't", "e-mail", "u.s", "3.14").
 * Any other non-space character is one punctuation token, kept or dropped (`punctuation`). Text is put in
 * Unicode NFC form (only lines with non-ASCII characters pay for it) and lowercased when `lowercase`.
 * A line is a sentence; with `sentences: "punct"` a sentence also ends after ".", "!", "?" (and their
 * full-width forms), which are themselves dropped unless punctuation is kept.
 *
 * @module
 */

/** Options of {@link createTokenizer}. */
export type TokenizerOptions = {
  /** lowercase every token (default true) */
  lowercase?: boolean;
  /** "strip" drops punctuation tokens (default), "keep" keeps each punctuation character as a token */
  punctuation?: "strip" | "keep";
  /** "line" (default): each line is a sentence; "punct": sentence-final punctuation also ends one */
  sentences?: "line" | "punct";
};

/**
 * Splits one line into sentences of tokens; calls `onSentence(tokens, n)` with a reused array (valid
 * only during the call) for every non-empty sentence.
 */
export type Tokenizer = (line: string, onSentence: (tokens: string[], n: number) => void) => void;

const WORD = "[\\p{L}\\p{M}\\p{N}]+(?:['’._\\-][\\p{L}\\p{M}\\p{N}]+)*";
const NON_ASCII = /[^\u0020-\u007e\t\r\n]/; // anything outside printable ASCII
const SENTENCE_END = new Set([".", "!", "?", "。", "！", "？"]);

/**
 * Builds a tokenizer. The returned function allocates only the token strings themselves.
 *
 * @example
 * ```ts
 * import { createTokenizer } from "./tokenize.ts";
 * const tok = createTokenizer({ lowercase: true, punctuation: "strip" });
 * tok("Don't panic, Zaphod!", (t, n) => console.log(t.slice(0, n))); // ["don't", "panic", "zaphod"]
 * ```
 */
export function createTokenizer(opts: TokenizerOptions = {}): Tokenizer {
  const lowercase = opts.lowercase ?? true;
  const keepPunct = (opts.punctuation ?? "strip") === "keep";
  const splitPunct = (opts.sentences ?? "line") === "punct";
  const needPunct = keepPunct || splitPunct;
  const re = new RegExp(needPunct ? `${WORD}|[^\\s\\p{L}\\p{M}\\p{N}]` : WORD, "gu");
  const buf: string[] = [];
  return (line, onSentence) => {
    if (NON_ASCII.test(line)) line = line.normalize("NFC");
    if (lowercase) line = line.toLowerCase();
    let n = 0;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(line)) !== null) {
      const t = m[0];
      if (needPunct && t.length <= 2 && !isWordChar(t.codePointAt(0)!)) {
        if (keepPunct) buf[n++] = t;
        if (splitPunct && SENTENCE_END.has(t)) {
          if (n > 0) onSentence(buf, n);
          n = 0;
        }
        continue;
      }
      buf[n++] = t;
    }
    if (n > 0) onSentence(buf, n);
  };
}

const WORD_CHAR = /[\p{L}\p{M}\p{N}]/u;
function isWordChar(cp: number): boolean {
  if (cp < 128) {
    return (cp >= 48 && cp <= 57) || (cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122);
  }
  return WORD_CHAR.test(String.fromCodePoint(cp));
}

/**
 * Tokenises one line of the Brown corpus (`word/tag word/tag …`, already tokenised): strips each
 * token's last `/tag`, lowercases when asked, and drops punctuation-only tokens unless kept. Calls
 * `onSentence` once per non-empty line, like {@link Tokenizer}.
 *
 * @example
 * ```ts
 * import { createBrownTokenizer } from "./tokenize.ts";
 * const tok = createBrownTokenizer({ lowercase: true });
 * tok("\tThe/at jury/nn said/vbd ./.", (t, n) => console.log(t.slice(0, n))); // ["the", "jury", "said"]
 * ```
 */
export function createBrownTokenizer(opts: TokenizerOptions = {}): Tokenizer {
  const lowercase = opts.lowercase ?? true;
  const keepPunct = (opts.punctuation ?? "strip") === "keep";
  const splitPunct = (opts.sentences ?? "line") === "punct";
  const buf: string[] = [];
  return (line, onSentence) => {
    let n = 0;
    for (const raw of line.split(/\s+/)) {
      if (raw.length === 0) continue;
      const slash = raw.lastIndexOf("/");
      let w = slash > 0 ? raw.slice(0, slash) : raw;
      if (lowercase) w = w.toLowerCase();
      let hasWordChar = false;
      for (let i = 0; i < w.length; i++) {
        if (isWordChar(w.charCodeAt(i))) {
          hasWordChar = true;
          break;
        }
      }
      if (!hasWordChar) {
        if (keepPunct) buf[n++] = w;
        if (splitPunct && SENTENCE_END.has(w)) {
          if (n > 0) onSentence(buf, n);
          n = 0;
        }
        continue;
      }
      buf[n++] = w;
    }
    if (n > 0) onSentence(buf, n);
  };
}
