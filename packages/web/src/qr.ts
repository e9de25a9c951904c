/**
 * A QR code as one SVG path: uqr computes the module matrix, each dark module becomes a 1×1
 * square. Pure, so the e2e test computes the same path for the URI it reads and compares.
 */
import { encode } from 'uqr';

export function qrPath(value: string): { size: number; path: string } {
  const { data, size } = encode(value, { ecc: 'M', border: 2 });
  let path = '';
  data.forEach((row, y) => row.forEach((dark, x) => dark && (path += `M${x} ${y}h1v1h-1z`)));
  return { size, path };
}
