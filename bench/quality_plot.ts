/**
 * The picture of `deno task bench:quality`: word-similarity quality against training seconds, one line per
 * system, as a self-contained SVG (no dependency). Two panels side by side (WordSim-353 ρ, SimLex-999 ρ)
 * share a logarithmic time axis, so that a run a hundred times slower still shows its first points; the
 * legend sits on the right. factorout's factored runs are solid lines with filled dots, its naive runs
 * dashed lines with hollow dots in the same colour as the same loss, fastText dotted lines with squares.
 *
 * @module
 */

/**
 * One measured point of a run: training seconds so far and the scores of the vectors at that moment
 * (undefined or NaN where a score could not be computed, e.g. no pair in the vocabulary).
 *
 * @example
 * ```ts
 * import type { QualityPoint } from "./quality_plot.ts";
 * const p: QualityPoint = { seconds: 12.5, wordsim: 0.31, simlex: 0.12, analogy: 0.05 };
 * ```
 */
export type QualityPoint = {
  seconds: number;
  wordsim?: number;
  simlex?: number;
  analogy?: number;
};

/** Which kind of system a series is: it decides the line style. */
export type SeriesKind = "factored" | "naive" | "fasttext";

/**
 * One system's line: its label, kind, the loss (which picks the colour) and its points.
 *
 * @example
 * ```ts
 * import type { QualitySeries } from "./quality_plot.ts";
 * const s: QualitySeries = { label: "factorout spherical", kind: "factored", loss: "spherical", points: [] };
 * ```
 */
export type QualitySeries = { label: string; kind: SeriesKind; loss: string; points: QualityPoint[] };

const LOSS_COLOURS: Record<string, string> = {
  spherical: "#1f77b4",
  taylor: "#ff7f0e",
  squared: "#2ca02c",
  zloss: "#d62728",
  softmax: "#9467bd",
  ns: "#5c3a21",
  hs: "#7f7f7f",
};
const SPARE_COLOURS = ["#17becf", "#bcbd22", "#e377c2", "#8c564b"];

function colourOf(s: QualitySeries, i: number): string {
  return LOSS_COLOURS[s.loss] ?? SPARE_COLOURS[i % SPARE_COLOURS.length];
}

function esc(t: string): string {
  return t.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/** Tick values 1, 2, 5 × 10^k inside [lo, hi] (a log axis). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** k;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

/** A step of 0.05, 0.1 or 0.2 giving 3–8 ticks over [lo, hi]. */
function linearTicks(lo: number, hi: number): number[] {
  const step = [0.05, 0.1, 0.2, 0.5].find((s) => (hi - lo) / s <= 8) ?? 1;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toFixed(3)));
  return out;
}

function tickLabel(v: number): string {
  return v >= 1 ? String(Math.round(v)) : String(Number(v.toPrecision(2)));
}

const finite = (x: number | undefined): x is number => typeof x === "number" && Number.isFinite(x);

/**
 * The SVG text of the two-panel plot (WordSim-353 ρ and SimLex-999 ρ against seconds, log scale).
 * Points without a finite score are left out of that panel; a series with no point left is still listed
 * in the legend, marked "(no score)".
 *
 * @example
 * ```ts
 * import { qualitySvg } from "./quality_plot.ts";
 * const svg = qualitySvg([{ label: "factorout spherical", kind: "factored", loss: "spherical",
 *   points: [{ seconds: 2, wordsim: 0.2, simlex: 0.05 }, { seconds: 20, wordsim: 0.4, simlex: 0.15 }] }],
 *   { title: "Brown", subtitle: "dim 100" });
 * svg.startsWith("<svg"); // true
 * ```
 */
export function qualitySvg(
  series: QualitySeries[],
  opts: { title: string; subtitle?: string },
): string {
  const W = 1260, H = 520;
  const panelW = 390, panelH = 360, top = 80, left = [70, 70 + panelW + 70];
  const legendX = left[1] + panelW + 30;
  const all = series.flatMap((s) => s.points).filter((p) => p.seconds > 0 && Number.isFinite(p.seconds));
  const tMin = all.length ? Math.min(...all.map((p) => p.seconds)) : 1;
  const tMax = all.length ? Math.max(...all.map((p) => p.seconds)) : 10;
  // the axis runs from the 1-2-5 tick below the first point to the one above the last
  // (a point never sits on the frame: the bounds keep a fifth of a decade-ish margin)
  const lo = logTicks(tMin / 10, tMin / 1.15).at(-1) ?? tMin / 2;
  const hi = logTicks(tMax * 1.15, tMax * 10)[0] ?? tMax * 2;
  const lx = (t: number) => (Math.log(t) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) * panelW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="26" text-anchor="middle" font-size="18" font-weight="bold">${
      esc(opts.title)
    }</text>`,
  );
  if (opts.subtitle) {
    out.push(`<text x="${W / 2}" y="48" text-anchor="middle" fill="#444">${esc(opts.subtitle)}</text>`);
  }
  const panels: { key: "wordsim" | "simlex"; title: string }[] = [
    { key: "wordsim", title: "WordSim-353 Spearman ρ" },
    { key: "simlex", title: "SimLex-999 Spearman ρ" },
  ];
  panels.forEach((panel, pi) => {
    const x0 = left[pi], y0 = top;
    const vals = series.flatMap((s) => s.points.map((p) => p[panel.key])).filter(finite);
    const vLo = Math.min(0, ...vals), vHi = Math.max(0.1, ...vals);
    // a margin of 0.02 keeps the extreme points off the frame
    const yTicks = linearTicks(
      vLo < 0 ? Math.floor((vLo - 0.02) * 10) / 10 : 0,
      Math.ceil((vHi + 0.02) * 10) / 10,
    );
    const yLo = yTicks[0], yHi = yTicks[yTicks.length - 1];
    const ly = (v: number) => panelH - (v - yLo) / (yHi - yLo) * panelH;
    out.push(`<g transform="translate(${x0},${y0})">`);
    out.push(`<rect width="${panelW}" height="${panelH}" fill="#fafafa" stroke="#999"/>`);
    for (const t of logTicks(lo, hi)) {
      const x = lx(t).toFixed(1);
      out.push(`<line x1="${x}" y1="0" x2="${x}" y2="${panelH}" stroke="#e3e3e3"/>`);
      out.push(`<text x="${x}" y="${panelH + 18}" text-anchor="middle">${tickLabel(t)}</text>`);
    }
    for (const v of yTicks) {
      const y = ly(v).toFixed(1);
      out.push(
        `<line x1="0" y1="${y}" x2="${panelW}" y2="${y}" stroke="${v === 0 ? "#888" : "#e3e3e3"}"/>`,
        `<text x="-8" y="${y}" text-anchor="end" dominant-baseline="middle">${v.toFixed(2)}</text>`,
      );
    }
    out.push(
      `<text x="${panelW / 2}" y="-10" text-anchor="middle" font-weight="bold">${esc(panel.title)}</text>`,
      `<text x="${panelW / 2}" y="${
        panelH + 40
      }" text-anchor="middle">training time, seconds (log scale)</text>`,
      `<text transform="translate(-50,${panelH / 2}) rotate(-90)" text-anchor="middle">${
        esc(panel.title.replace(" Spearman", ""))
      }</text>`,
    );
    series.forEach((s, i) => {
      const c = colourOf(s, i);
      const pts = s.points.filter((p) => p.seconds > 0 && finite(p[panel.key]))
        .sort((a, b) => a.seconds - b.seconds)
        .map((p) => [lx(p.seconds), ly(p[panel.key]!)] as const);
      if (pts.length > 1) {
        const dash = s.kind === "naive"
          ? ` stroke-dasharray="7,4"`
          : s.kind === "fasttext"
          ? ` stroke-dasharray="2,3"`
          : "";
        out.push(
          `<polyline fill="none" stroke="${c}" stroke-width="2"${dash} points="${
            pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ")
          }"/>`,
        );
      }
      for (const [x, y] of pts) out.push(marker(s.kind, x, y, c));
    });
    out.push(`</g>`);
  });
  // legend
  out.push(`<g transform="translate(${legendX},${top})">`);
  out.push(`<text x="0" y="0" font-weight="bold">systems</text>`);
  series.forEach((s, i) => {
    const y = 22 + i * 22, c = colourOf(s, i);
    const dash = s.kind === "naive"
      ? ` stroke-dasharray="7,4"`
      : s.kind === "fasttext"
      ? ` stroke-dasharray="2,3"`
      : "";
    const scored = s.points.some((p) => finite(p.wordsim) || finite(p.simlex));
    out.push(
      `<line x1="0" y1="${y}" x2="30" y2="${y}" stroke="${c}" stroke-width="2"${dash}/>`,
      marker(s.kind, 15, y, c),
      `<text x="38" y="${y}" dominant-baseline="middle">${esc(s.label)}${scored ? "" : " (no score)"}</text>`,
    );
  });
  out.push(`</g>`);
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

function marker(kind: SeriesKind, x: number, y: number, c: string): string {
  const X = x.toFixed(1), Y = y.toFixed(1);
  if (kind === "fasttext") {
    return `<rect x="${(x - 4).toFixed(1)}" y="${(y - 4).toFixed(1)}" width="8" height="8" fill="${c}"/>`;
  }
  return kind === "naive"
    ? `<circle cx="${X}" cy="${Y}" r="4" fill="white" stroke="${c}" stroke-width="2"/>`
    : `<circle cx="${X}" cy="${Y}" r="4" fill="${c}"/>`;
}
