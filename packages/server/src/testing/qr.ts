/**
 * QR codes for tests, made and read by libraries other than the code under test checks: a label's
 * SVG read back with jsQR (what a phone would find in it), and a camera's view of a QR code as a
 * Y4M video file for Chromium's fake camera (`--use-file-for-fake-video-capture`), its modules
 * computed by uqr.
 */
import jsQRModule from 'jsqr';
import { encode } from 'uqr';

// jsQR is a CommonJS module whose `exports.default` is the function (as is `module.exports` itself).
const jsQR = jsQRModule.default;

/** The text a QR code drawn as uqr's SVG (one `M x,y h p v p h -p z` square per dark module) holds, or null. */
export function readSvgQr(svg: string): string | null {
  const [, width, height] = /viewBox="0 0 (\d+) (\d+)"/.exec(svg) ?? [];
  const w = Number(width);
  const h = Number(height);
  const pixels = new Uint8ClampedArray(w * h * 4).fill(255);
  for (const [, x, y, size] of svg.matchAll(/M(\d+),(\d+)h(\d+)v\d+h-\d+z/g)) {
    for (let row = Number(y); row < Number(y) + Number(size); row++)
      for (let col = Number(x); col < Number(x) + Number(size); col++) pixels.fill(0, (row * w + col) * 4, (row * w + col) * 4 + 3);
  }
  return jsQR(pixels, w, h)?.data ?? null;
}

/**
 * One frame of 640×480 video (YUV 4:2:0, as Chromium's fake camera reads it, looped) showing the
 * QR code of `text` in its middle, 8 pixels a module, dark on light.
 */
export function qrVideoY4m(text: string): Buffer {
  const [width, height, scale] = [640, 480, 8];
  const { data, size } = encode(text, { ecc: 'M', border: 4 });
  if (size * scale > height) throw new Error(`a QR code of ${size} modules does not fit the frame: shorten the text`);
  const luma = Buffer.alloc(width * height, 235);
  const left = Math.floor((width - size * scale) / 2);
  const top = Math.floor((height - size * scale) / 2);
  data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (!dark) return;
      for (let line = 0; line < scale; line++) {
        const start = (top + y * scale + line) * width + left + x * scale;
        luma.fill(16, start, start + scale);
      }
    }),
  );
  const chroma = Buffer.alloc((width * height) / 2, 128);
  return Buffer.concat([Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420jpeg\nFRAME\n`), luma, chroma]);
}
