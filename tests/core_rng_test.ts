/**
 * The one seeded rng (lib/core/rng.ts): both generators give, for a seed, exactly the numbers they gave
 * before they were merged into one module (pinned below), so trained vectors and prepared shards stay the
 * same for the same seed.
 */

import assert from "node:assert/strict";
import { mixSeed, Rng, Sfc32, shufflePermutation, uniformSource } from "../lib/core/rng.ts";

// Recorded from lib/core/rng.ts (xoshiro128**) and lib/io/rng.ts (sfc32) before the merge.
const PINNED: Record<string, { x: unknown[]; s: number[] }> = {
  "0": {
    x: [2286771048, 0.6012373255880038, 4, 880260333, [76226195, 2148978711, 1217972990, 2849004628]],
    s: [80579708, 0.4252895889803767, 216, 6],
  },
  "1": {
    x: [83043869, 0.5761567654989862, 742, 2105718533, [168960533, 908864283, 3126608137, 1171722138]],
    s: [3813853525, 0.592974605737254, 66, 3],
  },
  "42": {
    x: [2787645071, 0.008623362070263929, 963, 3355901889, [643053283, 2383460720, 3425303443, 1606917048]],
    s: [1727538201, 0.06098756962455809, 670, 4],
  },
  "1099511627783": {
    x: [901852572, 0.6223822716745375, 176, 3976554108, [2733006066, 341442423, 823877242, 2717867710]],
    s: [2132660650, 0.9702490163035691, 289, 3],
  },
};

Deno.test("rng: both generators give the pinned streams for a seed", () => {
  for (const [key, want] of Object.entries(PINNED)) {
    const seed = Number(key);
    const x = new Rng(seed);
    const child = x.split();
    assert.deepEqual(
      [x.nextU32(), x.next(), x.int(1000), child.nextU32(), x.state()],
      want.x,
      `Rng(${seed})`,
    );
    const s = new Sfc32(seed);
    assert.deepEqual([s.nextU32(), s.nextFloat(), s.nextInt(1000), s.nextInt(7)], want.s, `Sfc32(${seed})`);
  }
  assert.deepEqual([mixSeed(42, 3, 7), mixSeed(2 ** 40, 1)], [3340211018, 2727973458]);
  assert.deepEqual(Array.from(shufflePermutation(new Int32Array(8), new Sfc32(1))), [1, 2, 6, 3, 7, 0, 4, 5]);
});

Deno.test("rng: state round-trips, bad state is refused, uniformSource is Rng.next", () => {
  const a = new Rng(9);
  a.next();
  const b = Rng.fromState(a.state());
  for (let i = 0; i < 10; i++) assert.equal(a.nextU32(), b.nextU32());
  assert.throws(() => Rng.fromState([1, 2, 3]), RangeError);
  const f = uniformSource(5), r = new Rng(5);
  for (let i = 0; i < 10; i++) assert.equal(f(), r.next());
});
