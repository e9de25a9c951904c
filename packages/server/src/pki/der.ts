/**
 * The few DER reads issuance needs without a full ASN.1 parse (the library's parse dominates the
 * cost of issuing): the elements of a SEQUENCE as byte ranges. Reading only; nothing is built here.
 */

export interface DerElement {
  tag: number;
  /** The whole element: tag, length and contents. */
  bytes: Buffer;
  /** The contents only. */
  contents: Buffer;
}

function readElement(der: Buffer, offset: number): DerElement {
  const tag = der[offset];
  let length = der[offset + 1];
  if (tag === undefined || length === undefined) throw new Error('DER element is truncated');
  let header = 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4) throw new Error('DER length is indefinite or too long');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[offset + 2 + i] ?? Number.NaN);
    header += octets;
  }
  const end = offset + header + length;
  if (!Number.isFinite(end) || end > der.length) throw new Error('DER element overruns its container');
  return { tag, bytes: der.subarray(offset, end), contents: der.subarray(offset + header, end) };
}

/** The elements of the SEQUENCE that `der` consists of. */
export function sequenceElements(der: Buffer): DerElement[] {
  const outer = readElement(der, 0);
  if (outer.tag !== 0x30 || outer.bytes.length !== der.length) throw new Error('DER is not a single SEQUENCE');
  const elements: DerElement[] = [];
  for (let offset = 0; offset < outer.contents.length;) {
    const element = readElement(outer.contents, offset);
    elements.push(element);
    offset += element.bytes.length;
  }
  return elements;
}
