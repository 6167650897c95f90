// Strokes drawn on a canvas -> the 8x8 input of the digits_cnn example, prepared the way
// scikit-learn's digits were (UCI "optdigits", from NIST forms): the digit is scaled so its taller
// side fills a 32x32 bitmap (every sklearn digit spans all 8 rows), centred, and each 4x4 block's
// count of ink pixels (0..16) is one of the 8x8 values. The model was trained on those values / 16.
//
// Pure functions, no canvas: the pen is rasterized here at a fixed width in bitmap units, so the
// result does not depend on how large or with what brush the digit was drawn, and tests can run
// it in Node.

export const SIZE = 32; // the normalized bitmap
export const BLOCK = 4; // 32 / 4 = 8 cells a side
export const PEN_RADIUS = 1.7; // in bitmap pixels: strokes about 3.4 px wide, like a pen on a 32x32 form

function distanceToSegment(px, py, ax, ay, bx, by) {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
  const x = ax + t * dx - px;
  const y = ay + t * dy - py;
  return Math.sqrt(x * x + y * y);
}

/**
 * @param {Array<Array<[number, number]>>} strokes points in any unit (canvas pixels), y down
 * @param {{radius?: number}} [options]
 * @returns {{counts: number[], bitmap: Uint8Array}} counts: 64 values 0..16, row-major; bitmap: 32x32 0/1
 */
export function strokesToDigit(strokes, { radius = PEN_RADIUS } = {}) {
  const bitmap = new Uint8Array(SIZE * SIZE);
  const points = strokes.flat();
  if (!points.length) return { counts: new Array(64).fill(0), bitmap };
  let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity;
  for (const [x, y] of points) {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x);
    minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  const w = maxX - minX;
  const h = maxY - minY;
  const room = SIZE - 2 * radius; // the pen's edge, not its centre, touches the border
  const scale = Math.max(w, h) > 0 ? room / Math.max(w, h) : 1;
  const cx = (minX + maxX) / 2;
  const cy = (minY + maxY) / 2;
  const segments = [];
  for (const stroke of strokes) {
    const pts = stroke.map(([x, y]) => [(x - cx) * scale + SIZE / 2, (y - cy) * scale + SIZE / 2]);
    if (pts.length === 1) segments.push([...pts[0], ...pts[0]]);
    for (let i = 1; i < pts.length; i++) segments.push([...pts[i - 1], ...pts[i]]);
  }
  for (let r = 0; r < SIZE; r++) {
    for (let c = 0; c < SIZE; c++) {
      const px = c + 0.5;
      const py = r + 0.5;
      for (const s of segments) {
        if (distanceToSegment(px, py, ...s) <= radius) {
          bitmap[r * SIZE + c] = 1;
          break;
        }
      }
    }
  }
  const cells = SIZE / BLOCK;
  const counts = new Array(cells * cells).fill(0);
  for (let r = 0; r < SIZE; r++) {
    for (let c = 0; c < SIZE; c++) counts[Math.floor(r / BLOCK) * cells + Math.floor(c / BLOCK)] += bitmap[r * SIZE + c];
  }
  return { counts, bitmap };
}

/** 64 counts (0..16) -> the model's float32 [1, 1, 8, 8] data (values / 16, as in training). */
export function countsToPixels(counts) {
  return Float32Array.from(counts, (v) => v / 16);
}

/** Softmax of one row of logits (numerically stable). */
export function softmax(logits) {
  const m = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
