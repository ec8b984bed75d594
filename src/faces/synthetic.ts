/**
 * The marks that every face-swap output carries: a note in the file's metadata (XMP
 * dc:description for photos, the container's comment tag for videos) and, on request, a
 * visible "SYNTHETIC" caption in the corner of the picture.
 */
import sharp from 'sharp';

export const SYNTHETIC_NOTE = 'SYNTHETIC: faces in this file were replaced by darkroom faceswap, a face-swap autoencoder; it does not show real events';

const XMP_DESCRIPTION = `<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt><rdf:li xml:lang="x-default">${SYNTHETIC_NOTE}</rdf:li></rdf:Alt></dc:description></rdf:Description>`;

/**
 * Adds the synthetic note to an XMP packet, or makes a packet holding only the note. The input's
 * own XMP (camera, rights, keywords) is kept, because the note adds to it rather than replaces it.
 */
export function withSyntheticXmp(xmp: string | undefined): string {
  if (xmp !== undefined && xmp.includes('</rdf:RDF>')) return xmp.replace('</rdf:RDF>', `${XMP_DESCRIPTION}</rdf:RDF>`);
  return (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>' +
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
    XMP_DESCRIPTION +
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
  );
}

/** A caption rendered once per frame size: RGBA pixels and where they go. */
export interface Caption {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;
}

const captions = new Map<string, Promise<Caption>>();

/**
 * The "SYNTHETIC" caption for a `width` x `height` picture: white capitals on a dark box in the
 * lower left corner, its text 4 % of the picture's height (at least 10 pixels), rendered from SVG by sharp.
 */
export function captionFor(width: number, height: number): Promise<Caption> {
  const key = `${width}x${height}`;
  let caption = captions.get(key);
  if (caption === undefined) {
    caption = renderCaption(width, height);
    captions.set(key, caption);
  }
  return caption;
}

async function renderCaption(width: number, height: number): Promise<Caption> {
  const fontSize = Math.max(10, Math.round(height * 0.04));
  const boxWidth = Math.min(width, Math.round(fontSize * 6.6));
  const boxHeight = Math.min(height, Math.round(fontSize * 1.5));
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${boxWidth}" height="${boxHeight}">` +
    `<rect width="100%" height="100%" fill="black" fill-opacity="0.6"/>` +
    `<text x="50%" y="50%" dominant-baseline="central" text-anchor="middle" font-family="DejaVu Sans, Arial, sans-serif" font-weight="bold" font-size="${fontSize}" fill="white">SYNTHETIC</text>` +
    '</svg>';
  const rgba = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer();
  const margin = Math.round(fontSize * 0.5);
  return {
    left: Math.max(0, Math.min(margin, width - boxWidth)),
    top: Math.max(0, height - boxHeight - margin),
    width: boxWidth,
    height: boxHeight,
    rgba: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength),
  };
}

/** Draws the caption into an RGB picture in place. */
export function drawCaption(rgb: Uint8Array, width: number, caption: Caption): void {
  for (let y = 0; y < caption.height; y++) {
    for (let x = 0; x < caption.width; x++) {
      const source = (y * caption.width + x) * 4;
      const alpha = caption.rgba[source + 3] / 255;
      if (alpha === 0) continue;
      const target = ((caption.top + y) * width + caption.left + x) * 3;
      for (let c = 0; c < 3; c++) rgb[target + c] = Math.round(rgb[target + c] * (1 - alpha) + caption.rgba[source + c] * alpha);
    }
  }
}
